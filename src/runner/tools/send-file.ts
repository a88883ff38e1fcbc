/**
 * send_file: deliver a file from the agent's workspace. The path must resolve (after symlinks)
 * inside the workspace and be a regular file under the size limit; it is copied into
 * outbox/<message>/ so later changes to the original do not alter what is sent.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { MAX_FILE_BYTES, stageOutboxFile } from '../outbox.js';
import { registerTool } from './registry.js';
import { defineTool, resolveTarget, ToolError } from './tool.js';

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
      const st = fs.statSync(real);
      if (!st.isFile()) throw new ToolError(`"${args.path}" is not a regular file.`);
      if (st.size > MAX_FILE_BYTES) {
        throw new ToolError(
          `"${args.path}" is ${(st.size / 1048576).toFixed(1)} MB; the limit is ${MAX_FILE_BYTES / 1048576} MB. Compress or split it.`,
        );
      }
      const name = args.filename ?? path.basename(real);
      if (!/^[^/\\\0]{1,200}$/.test(name) || name === '.' || name === '..')
        throw new ToolError(`filename "${name}" must be a plain file name without slashes.`);
      const { routing } = resolveTarget(ctx, args.to);
      const rel = stageOutboxFile(ctx.sessionDir, real, name, ctx.newId());
      const [seq] = ctx.write([
        {
          kind: 'message',
          inReplyTo: ctx.turn()?.messageId ?? null,
          routing,
          content: { text: args.text ?? '', files: [rel] },
        },
      ]);
      return `Sent ${name} (${st.size} bytes) as message seq ${seq}.`;
    },
  }),
);
