/**
 * ask_user_question: ask the current chat a multiple-choice question and wait for the answer.
 * Channels with buttons show buttons; text channels show numbered options, and a reply with
 * the number or the option's text answers. The answer comes back through inbound.db.
 */
import { z } from 'zod';
import { MAX_QUESTION_TIMEOUT_S } from '../../shared/messages.js';
import { questionText } from '../question-text.js';
import { registerTool } from './registry.js';
import { MAX_TEXT } from './send-message.js';
import { defineTool, resolveTarget, ToolError } from './tool.js';

const MAX_TITLE = 200;
const MAX_OPTION = 100;

registerTool(
  defineTool({
    name: 'ask_user_question',
    description:
      'Ask the person a question with 1–10 options and wait for their choice. Returns the chosen option, or says that nobody answered before the timeout.',
    input: {
      question: z.string().describe('The question.'),
      options: z.array(z.string()).describe('The choices, 1 to 10 short strings.'),
      title: z.string().optional().describe('Optional heading.'),
      timeout: z.number().int().optional().describe('Seconds to wait (default 300, max 86400).'),
    },
    async run({ question, options, title, timeout }, ctx, signal) {
      if (!question.trim()) throw new ToolError('`question` is empty.');
      if (question.length > MAX_TEXT)
        throw new ToolError(`\`question\` is ${question.length} characters; the limit is ${MAX_TEXT}.`);
      if (title && title.length > MAX_TITLE)
        throw new ToolError(`\`title\` is ${title.length} characters; the limit is ${MAX_TITLE}.`);
      const long = options.find((o) => o.trim().length > MAX_OPTION);
      if (long !== undefined)
        throw new ToolError(
          `Option "${long.trim().slice(0, 40)}…" is ${long.trim().length} characters; the limit is ${MAX_OPTION} (a button's label).`,
        );
      const opts = options.map((o) => o.trim()).filter(Boolean);
      if (opts.length < 1 || opts.length > 10)
        throw new ToolError('`options` needs 1 to 10 non-empty choices.');
      if (new Set(opts.map((o) => o.toLowerCase())).size !== opts.length)
        throw new ToolError('`options` must be distinct.');
      const seconds = timeout ?? 300;
      if (seconds < 1 || seconds > MAX_QUESTION_TIMEOUT_S)
        throw new ToolError(`\`timeout\` must be between 1 and ${MAX_QUESTION_TIMEOUT_S} seconds.`);
      const { routing } = resolveTarget(ctx, undefined);
      const questionId = ctx.newId();
      const expiresAt = ctx.now() + seconds * 1000;
      ctx.write([
        {
          kind: 'question',
          inReplyTo: ctx.turn()?.messageId ?? null,
          routing,
          content: {
            text: questionText(title, question, opts),
            question: { questionId, title, question, options: opts, expiresAt },
          },
        },
      ]);
      const answer = await ctx.waitForAnswer(questionId, expiresAt, signal);
      if (answer === null)
        return `No answer within ${seconds} seconds. Decide without it or ask again later.`;
      if (answer.undelivered)
        throw new ToolError(
          `The question could not be shown to anyone: ${answer.undelivered}. Decide without it, or ask in a chat you may post to.`,
        );
      return `The person chose: ${answer.text}`;
    },
  }),
);
