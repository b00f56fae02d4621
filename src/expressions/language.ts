/**
 * The languages of user code and their spellings. Kept apart from the
 * evaluators so that the model compiler can resolve languages without
 * loading a sandbox.
 */

/** A language Baton evaluates. */
export type Language = 'javascript' | 'python';

export const LANGUAGES: readonly Language[] = ['javascript', 'python'];

/**
 * The spellings a model or a client may use for a language, lower-cased:
 * the names, MIME types and URIs BPMN tools write into `scriptFormat`,
 * `language` and `expressionLanguage`.
 */
const SPELLINGS: Readonly<Record<string, Language>> = {
  javascript: 'javascript',
  js: 'javascript',
  ecmascript: 'javascript',
  'text/javascript': 'javascript',
  'application/javascript': 'javascript',
  'text/ecmascript': 'javascript',
  'application/ecmascript': 'javascript',
  'http://www.ecma-international.org/ecma-262': 'javascript',
  python: 'python',
  python3: 'python',
  py: 'python',
  'text/x-python': 'python',
  'text/python': 'python',
  'application/x-python': 'python',
  'http://www.python.org': 'python',
  'http://www.python.org/': 'python',
};

/**
 * What a spelling stands for: a language, `unspecified` for the values that
 * say nothing (empty, and the BPMN schema's default XPath URI that modelling
 * tools write without meaning it), or null for a language Baton does not run.
 */
export function languageOf(spelling: string | null | undefined): Language | 'unspecified' | null {
  const s = (spelling ?? '').trim().toLowerCase();
  if (s === '' || s === 'http://www.w3.org/1999/xpath') return 'unspecified';
  return SPELLINGS[s] ?? null;
}
