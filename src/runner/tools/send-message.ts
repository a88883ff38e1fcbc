/** send_message: post text to the current chat or a named destination, mid-turn. */
import { z } from 'zod';
import { MAX_TEXT } from '../../shared/outbound-rules.js';
import { registerTool } from './registry.js';
import { defineTool, resolveTarget, ToolError } from './tool.js';

registerTool(
  defineTool({
    name: 'send_message',
    description:
      'Send a message now, without ending your turn: to the chat you are answering (default) or to a destination named by list_destinations. If you answer the current chat with this tool, your final text is not sent again.',
    input: {
      text: z.string().describe('The message text (Markdown is fine).'),
      to: z
        .string()
        .optional()
        .describe('Destination name from list_destinations; omit for the current chat.'),
    },
    run({ text, to }, ctx) {
      if (!text.trim()) throw new ToolError('`text` is empty: pass the message to send.');
      if (text.length > MAX_TEXT)
        throw new ToolError(
          `\`text\` is ${text.length} characters; the limit is ${MAX_TEXT}. Split it into several messages.`,
        );
      const { routing } = resolveTarget(ctx, to);
      const [seq] = ctx.write([
        { kind: 'message', inReplyTo: ctx.turn()?.messageId ?? null, routing, content: { text } },
      ]);
      return `Sent as message seq ${seq} to ${to ?? 'the current chat'}.`;
    },
  }),
);
