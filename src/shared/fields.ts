/**
 * Checks of values an admin types, shared by config, admin ops and the vault so each rule and
 * its wording live once. Names end up in lists, prompts and other people's chats: one line,
 * not blank (a newline in an assistant name would break the lines it is printed in, or the
 * prompt it is written into). Upstream URLs receive credentials: http(s) and nothing hidden.
 */
import { z } from 'zod';

// eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
const CONTROL = /[\u0000-\u001f\u007f]/;

/** One line, not blank, at most `max` characters. */
export const lineField = (max: number) =>
  z
    .string()
    .max(max, `at most ${max} characters`)
    .refine((v) => v.trim() !== '', 'empty')
    .refine((v) => !CONTROL.test(v), 'one line, without control characters');

/**
 * Why a URL cannot be an upstream the gateway sends credentials to (null: it can): http(s)
 * only, no user:password in it (credentials live in the vault), no query or fragment (paths
 * are appended to it).
 */
export function upstreamUrlProblem(url: string, opts: { query?: boolean } = {}): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `"${url}" is not a URL`;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return 'must be http(s)';
  if (u.username || u.password) return 'must not carry credentials';
  if (u.hash || (u.search && !opts.query)) return 'must not have a query or fragment';
  return null;
}

/** A string field checked by a function that says what is wrong with a value (null: nothing). */
export const checkedString = (problem: (v: string) => string | null) =>
  z.string().superRefine((v, ctx) => {
    const p = problem(v);
    if (p) ctx.addIssue({ code: 'custom', message: p });
  });

/** A config field holding an upstream URL (`query`: a whole URL called as it is, not a base). */
export const upstreamUrl = (opts: { query?: boolean } = {}) =>
  checkedString((v) => upstreamUrlProblem(v, opts));
