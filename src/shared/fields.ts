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
