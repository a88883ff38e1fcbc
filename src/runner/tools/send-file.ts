/**
 * send_file: deliver a file from the agent's workspace. The path must resolve (after symlinks)
 * inside the workspace; the checks on the file itself (a regular file, under the size limit, a
 * plain file name) are the staging helper's (outbox.ts), worded here so the model can fix its
 * call. The destination is resolved before anything is copied, so a refused call leaves no
 * copy behind in outbox/.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { PolyclawError } from '../../shared/errors.js';
import { stageOutboxFile } from '../outbox.js';
import { registerTool } from './registry.js';
import { MAX_TEXT } from '../../shared/outbound-rules.js';
import { defineTool, resolveTarget, ToolError } from './tool.js';

/** The staging helper's refusal, said to the model in terms of its own arguments. */
function refusal(err: unknown, given: string): unknown {
  if (!(err instanceof PolyclawError)) return err;
  switch (err.code) {
    case 'file_missing':
      return new ToolError(`"${given}" is not a regular file.`);
    case 'file_too_large':
      return new ToolError(`${err.message}. Compress or split it.`);
    case 'path_refused':
      return new ToolError(`${err.message}.`);
    default:
      return err;
  }
}

registerTool(
  defineTool({
    name: 'send_file',
    description:
      'Send a file from your workspace to the current chat or a named destination, with an optional caption.',
    input: {
      path: z.string().describe('Path of the file, absolute or relative to your workspace folder.'),
      text: z.string().optional().describe('Caption sent with the file.'),
      filename: z.string().optional().describe('Name the recipient sees; defaults to the file name.'),
      to: z
        .string()
        .optional()
        .describe('Destination name from list_destinations; omit for the current chat.'),
    },
    run(args, ctx) {
      if (args.text && args.text.length > MAX_TEXT)
        throw new ToolError(`The caption is ${args.text.length} characters; the limit is ${MAX_TEXT}.`);
      const root = fs.realpathSync(ctx.agentDir);
      const wanted = path.resolve(root, args.path);
      let real: string;
      try {
        real = fs.realpathSync(wanted);
      } catch {
        throw new ToolError(
          `No file at "${args.path}". Give a path inside your workspace (${ctx.agentDir}).`,
        );
      }
      if (real !== root && !real.startsWith(root + path.sep)) {
        throw new ToolError(
          `"${args.path}" is outside your workspace (${ctx.agentDir}); copy the file into it first.`,
        );
      }
      const name = args.filename ?? path.basename(real);
      const { routing } = resolveTarget(ctx, args.to);
      let rel: string;
      try {
        rel = stageOutboxFile(ctx.sessionDir, real, name, ctx.newId());
      } catch (err) {
        throw refusal(err, args.path);
      }
      const [seq] = ctx.write([
        {
          kind: 'message',
          inReplyTo: ctx.turn()?.messageId ?? null,
          routing,
          content: { text: args.text ?? '', files: [rel] },
        },
      ]);
      return `Sent ${name} (${fs.statSync(path.join(ctx.sessionDir, rel)).size} bytes) as message seq ${seq}.`;
    },
  }),
);
