/**
 * Values an admin types that end up shown in lists, prompts and other people's chats: one
 * line, not blank. A newline in a model name or an assistant name would pass every other
 * check and then break the lines it is printed in (or the prompt it is written into).
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

/** A config field holding such a URL (`query`: a whole URL that is called as it is, not a base). */
export const upstreamUrl = (opts: { query?: boolean } = {}) =>
  z.string().superRefine((v, ctx) => {
    const problem = upstreamUrlProblem(v, opts);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });
