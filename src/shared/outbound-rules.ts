/**
 * What an agent may send, checked twice: by the tools in the sandbox, so the model hears of a
 * bad call at once, and by the host before delivery, which trusts nothing a sandbox writes (a
 * row that fails here is not sent, and the agent, and a tool waiting on a question, are told).
 * The limits are what chat platforms carry: a message's text, a button's label.
 */
import { z } from 'zod';

/** The longest text of one message, card fallback, caption or question. */
export const MAX_TEXT = 32_000;
export const MAX_TITLE = 200;
/** An option is shown as a button's label where the chat has buttons. */
export const MAX_OPTION = 100;
export const MAX_OPTIONS = 10;

export const CardSchema = z.object({
  title: z.string().max(MAX_TITLE).optional(),
  text: z.string().max(4000).optional(),
  fields: z
    .array(z.object({ label: z.string().max(100), value: z.string().max(1000) }))
    .max(20)
    .optional(),
  buttons: z
    .array(z.object({ label: z.string().max(80), url: z.string().url() }))
    .max(5)
    .optional(),
});
export type Card = z.infer<typeof CardSchema>;

export function cardToText(card: Card): string {
  const lines: string[] = [];
  if (card.title) lines.push(`**${card.title}**`);
  if (card.text) lines.push(card.text);
  for (const f of card.fields ?? []) lines.push(`${f.label}: ${f.value}`);
  for (const b of card.buttons ?? []) lines.push(`${b.label}: ${b.url}`);
  return lines.join('\n');
}

/** Why a card cannot be sent (one line), or null. */
export function cardProblem(card: unknown): string | null {
  const r = CardSchema.safeParse(card);
  if (r.success) return null;
  const issue = r.error.issues[0]!;
  return `the card is not valid at ${issue.path.join('.') || 'its top'}: ${issue.message}`;
}

/** How an option and a reply naming it are compared: trimmed, a final dot aside, case aside. */
export const optionKey = (s: string) => s.trim().replace(/\.$/, '').toLowerCase();

/**
 * Why a question cannot be asked (one sentence the model can act on), or null. Options must
 * differ by optionKey, as replies are matched (store/questions.ts matchOption).
 */
export function questionProblem(q: { question: string; title?: string; options: string[] }): string | null {
  if (!q.question.trim()) return '`question` is empty.';
  if (q.question.length > MAX_TEXT)
    return `\`question\` is ${q.question.length} characters; the limit is ${MAX_TEXT}.`;
  if (q.title && q.title.length > MAX_TITLE)
    return `\`title\` is ${q.title.length} characters; the limit is ${MAX_TITLE}.`;
  const long = q.options.find((o) => o.trim().length > MAX_OPTION);
  if (long !== undefined)
    return `Option "${long.trim().slice(0, 40)}…" is ${long.trim().length} characters; the limit is ${MAX_OPTION} (a button's label).`;
  const opts = q.options.map((o) => o.trim()).filter(Boolean);
  if (opts.length < 1 || opts.length > MAX_OPTIONS || opts.length !== q.options.length)
    return `\`options\` needs 1 to ${MAX_OPTIONS} non-empty choices.`;
  if (new Set(opts.map(optionKey)).size !== opts.length) return '`options` must be distinct.';
  return null;
}
