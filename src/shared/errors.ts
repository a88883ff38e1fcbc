/**
 * Typed errors for the host and CLI. `code` is stable and machine-readable (it travels on the
 * admin wire as {ok:false,error:{code,message}}); `message` is one line a person can act on.
 */
export type ErrorCode =
  | 'bad_request'
  | 'not_found'
  | 'conflict'
  | 'unavailable'
  | 'forbidden'
  | 'internal'
  | 'sandbox'
  | 'already_running'
  | 'path_refused'
  | 'file_missing'
  | 'file_too_large'
  | 'config';

export class PolyclawError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'PolyclawError';
  }
}

export const badRequest = (msg: string) => new PolyclawError('bad_request', msg);
export const notFound = (msg: string) => new PolyclawError('not_found', msg);
export const conflict = (msg: string) => new PolyclawError('conflict', msg);

/** A validation failure (zod) as one line: its first issue, named by its path or by `top`. */
export function issueLine(
  error: { issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }> },
  top: string,
): string {
  const i = error.issues[0];
  return i ? `${i.path.map(String).join('.') || top}: ${i.message}` : `${top}: invalid`;
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

export function toWireError(err: unknown): { code: string; message: string } {
  if (err instanceof PolyclawError) return { code: err.code, message: err.message };
  return { code: 'internal', message: errorMessage(err).split('\n')[0] ?? 'internal error' };
}
