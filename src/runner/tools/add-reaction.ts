/** add_reaction: react with an emoji to a message sent or received (dropped where chats have no reactions). */
import { z } from 'zod';
import { registerTool } from './registry.js';
import { defineTool, ToolError } from './tool.js';

registerTool(
  defineTool({
    name: 'add_reaction',
    description:
      'React with an emoji to a message in this conversation, addressed by its seq id (yours or one you received).',
    input: {
      seq: z.number().int().describe('seq of the message to react to.'),
      emoji: z.string().describe('One emoji, e.g. "👍".'),
    },
    run({ seq, emoji }, ctx) {
      const e = emoji.trim();
      if (!e || e.length > 16 || /\s/.test(e))
        throw new ToolError('`emoji` must be a single emoji such as "👍".');
      const target = seq % 2 === 0 ? ctx.receivedBySeq(seq) : ctx.sentBySeq(seq);
      if (!target) throw new ToolError(`There is no message with seq ${seq} in this conversation.`);
      ctx.write([
        {
          kind: 'reaction',
          inReplyTo: ctx.turn()?.messageId ?? null,
          routing: target.routing,
          content: { text: '', targetSeq: seq, emoji: e },
        },
      ]);
      return `Reaction ${e} on seq ${seq} queued.`;
    },
  }),
);
