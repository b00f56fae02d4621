/** Shared by the sandbox tests. */
import { expect } from 'vitest';
import { ExpressionError } from '../../src/expressions/index.js';

/** Runs `fn`, expects an ExpressionError and returns it. */
export function failure(fn: () => unknown): ExpressionError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ExpressionError);
    return e as ExpressionError;
  }
  throw new Error('expected an ExpressionError, got a result');
}
