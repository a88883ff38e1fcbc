/** send_card: a display card (title, text, fields, link buttons); chats without cards get the fallback text. */
import { z } from 'zod';
import { cardToText, CardSchema, MAX_TEXT } from '../../shared/outbound-rules.js';
import { registerTool } from './registry.js';
import { defineTool, resolveTarget, ToolError } from './tool.js';

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
