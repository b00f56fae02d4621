/**
 * The one base error of Baton. Every error that may reach a client carries a
 * stable string `code`; the API maps codes to HTTP statuses in one place
 * (src/api/errors.ts). Messages are for humans and may change; codes may not.
 */
export class BatonError extends Error {
  readonly code: string;
  readonly details?: unknown;
  constructor(code: string, message: string, details?: unknown) {
    super(message);
    this.name = 'BatonError';
    this.code = code;
    this.details = details;
  }
}

/** A JSON value: the only thing a process variable may hold. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };
