/** send_card: a display card (title, text, fields, link buttons); chats without cards get the fallback text. */
import { z } from 'zod';
import { registerTool } from './registry.js';
import { MAX_TEXT } from './send-message.js';
import { defineTool, resolveTarget, ToolError } from './tool.js';

export const CardSchema = z.object({
  title: z.string().max(200).optional(),
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

registerTool(
  defineTool({
    name: 'send_card',
    description:
      'Send a display card (title, text, label/value fields, link buttons). Chats that cannot show cards receive fallbackText, or a plain-text rendering of the card.',
    input: {
      card: CardSchema.describe(
        'The card: {title?, text?, fields?: [{label, value}], buttons?: [{label, url}]}.',
      ),
      fallbackText: z.string().optional().describe('Text for chats without cards.'),
      to: z
        .string()
        .optional()
        .describe('Destination name from list_destinations; omit for the current chat.'),
    },
    run({ card, fallbackText, to }, ctx) {
      if (fallbackText && fallbackText.length > MAX_TEXT)
        throw new ToolError(
          `\`fallbackText\` is ${fallbackText.length} characters; the limit is ${MAX_TEXT}.`,
        );
      const text = fallbackText?.trim() ? fallbackText : cardToText(card); // a blank one is not given
      if (!text.trim()) throw new ToolError('The card is empty: give it at least a title or text.');
      const { routing } = resolveTarget(ctx, to);
      const [seq] = ctx.write([
        { kind: 'card', inReplyTo: ctx.turn()?.messageId ?? null, routing, content: { text, card } },
      ]);
      return `Card sent as seq ${seq}.`;
    },
  }),
);
