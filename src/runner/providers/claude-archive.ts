/**
 * Before Claude Code compacts a conversation, the full transcript is archived into the
 * group's conversations/ folder as readable Markdown, so memory survives the summary.
 * Invariants: the archive is written atomically (temp file + rename) under a name unique per
 * session and time; a transcript that cannot be read is logged and compaction goes ahead.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../shared/log.js';
import { errorMessage } from '../../shared/errors.js';
import { writeFileAtomic } from '../../shared/atomic-file.js';

interface Line {
  type?: string;
  message?: { role?: string; content?: unknown };
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((b: { type?: string; text?: string; name?: string }) =>
      b.type === 'text' ? (b.text ?? '') : b.type === 'tool_use' ? `[tool: ${b.name ?? '?'}]` : '',
    )
    .filter(Boolean)
    .join('\n');
}

export function renderTranscript(jsonl: string): string {
  const out: string[] = [];
  for (const raw of jsonl.split('\n')) {
    if (!raw.trim()) continue;
    let line: Line;
    try {
      line = JSON.parse(raw) as Line;
    } catch {
      continue; // a torn last line of a transcript being written: skip it
    }
    if (line.type !== 'user' && line.type !== 'assistant') continue;
    const text = textOf(line.message?.content).trim();
    if (text) out.push(`## ${line.type}\n\n${text}\n`);
  }
  return out.join('\n');
}

export function archiveTranscript(opts: {
  transcriptPath: string;
  agentDir: string;
  sessionId: string;
  now?: () => Date;
  log: Logger;
}): string | null {
  try {
    const md = renderTranscript(fs.readFileSync(opts.transcriptPath, 'utf8'));
    const dir = path.join(opts.agentDir, 'conversations');
    fs.mkdirSync(dir, { recursive: true });
    const stamp = (opts.now?.() ?? new Date()).toISOString().replace(/[:.]/g, '-');
    const file = path.join(dir, `${stamp}-${opts.sessionId.slice(0, 8)}.md`);
    writeFileAtomic(file, `# Conversation ${opts.sessionId} (archived before compaction)\n\n${md}`);
    opts.log.info('archived transcript before compaction', { file });
    return file;
  } catch (err) {
    opts.log.warn('could not archive the transcript before compaction', { err: errorMessage(err) });
    return null;
  }
}
