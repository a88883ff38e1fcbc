/**
 * ask_user_question: ask the current chat a multiple-choice question and wait for the answer.
 * Channels with buttons show buttons; text channels show numbered options, and a reply with
 * the number or the option's text answers. The answer comes back through inbound.db.
 */
import { z } from 'zod';
import { MAX_QUESTION_TIMEOUT_S } from '../../shared/messages.js';
import { questionProblem } from '../../shared/outbound-rules.js';
import { questionText } from '../question-text.js';
import { registerTool } from './registry.js';
import { defineTool, resolveTarget, ToolError } from './tool.js';

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
      const opts = options.map((o) => o.trim()).filter(Boolean);
      // Blank options are dropped (models pad lists), then the rest must pass as the host checks them.
      const problem = questionProblem({ question, title, options: opts.length ? opts : options });
      if (problem) throw new ToolError(problem);
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
