/** edit_message: replace the text of a message the agent sent (channels without edits get a new message). */
import { z } from 'zod';
import { registerTool } from './registry.js';
import { defineTool, ToolError } from './tool.js';
import { MAX_TEXT } from '../../shared/outbound-rules.js';

registerTool(
  defineTool({
    name: 'edit_message',
    description:
      'Edit a message you sent earlier, addressed by its seq id. Where the chat cannot edit, the new text is sent as a new message.',
    input: {
      seq: z.number().int().describe('seq of your message (odd numbers are yours).'),
      text: z.string().describe('The new full text.'),
    },
    run({ seq, text }, ctx) {
      if (!text.trim()) throw new ToolError('`text` is empty: pass the new text of the message.');
      if (text.length > MAX_TEXT)
        throw new ToolError(`\`text\` is too long (${text.length}); the limit is ${MAX_TEXT}.`);
      if (seq % 2 === 0)
        throw new ToolError(
          `seq ${seq} is a message you received; you can only edit your own messages (odd seq).`,
        );
      const sent = ctx.sentBySeq(seq);
      if (!sent)
        throw new ToolError(`You sent no message with seq ${seq}. Check the seq ids in the conversation.`);
      if (sent.kind !== 'message')
        throw new ToolError(
          `seq ${seq} is a ${sent.kind}, not a plain message; only plain messages can be edited. Send a new ${sent.kind} instead.`,
        );
      const [out] = ctx.write([
        {
          kind: 'edit',
          inReplyTo: ctx.turn()?.messageId ?? null,
          routing: sent.routing,
          content: { text, targetSeq: seq },
        },
      ]);
      return `Edit of seq ${seq} queued (seq ${out}).`;
    },
  }),
);
