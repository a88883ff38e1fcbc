/**
 * Which runtime context (the runner's systemContext: assistant name, timezone, destinations)
 * each codex thread last received, so a changed one reaches the model and an unchanged one is
 * not sent again.
 * Why: codex takes `developerInstructions` only when it starts a thread; a thread/resume keeps
 * the ones in the thread's history (verified with 0.169, warm or in a new process). A changed
 * context is therefore appended to the thread as a developer message (thread/inject_items),
 * which codex keeps in the thread's history for every later turn.
 * Invariants:
 *  - one small file per thread under CODEX_HOME (per group, persistent like codex's threads),
 *    holding a digest of the context, never the text;
 *  - a thread with no record (started before this record existed, or a lost write) counts as
 *    changed: the context is sent once more rather than possibly missed.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface ContextRecord {
  /** True when `thread` is known to have received exactly `context`. */
  has(thread: string, context: string): boolean;
  remember(thread: string, context: string): void;
}

const digest = (context: string) => createHash('sha256').update(context).digest('hex');

/** Thread ids are UUIDs; anything else gets no record (and so is always treated as changed). */
const SAFE_ID = /^[A-Za-z0-9-]{1,100}$/;

export function contextRecord(codexHome: string): ContextRecord {
  const dir = path.join(codexHome, 'polyclaw-context');
  const file = (thread: string) => path.join(dir, thread);
  return {
    has(thread, context) {
      if (!SAFE_ID.test(thread)) return false;
      try {
        return fs.readFileSync(file(thread), 'utf8') === digest(context);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
        throw err;
      }
    },
    remember(thread, context) {
      if (!SAFE_ID.test(thread)) return;
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(file(thread), digest(context));
    },
  };
}

/** The developer message that carries a changed context into a thread's history. */
export function contextUpdateItem(context: string) {
  return {
    type: 'message',
    role: 'developer',
    content: [
      {
        type: 'input_text',
        text: `The runtime context changed. It now reads as follows and replaces the earlier one:\n\n${context}`,
      },
    ],
  };
}
