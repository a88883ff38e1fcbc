/**
 * Staging a file for delivery. Outbound rows may name files under outbox/ only (the host refuses
 * anything else, see delivery.ts), so a file the agent made elsewhere — a send_file argument, an
 * image its agent CLI generated — is copied into outbox/<folder>/ first: a copy, so later changes
 * to the original do not alter what is sent, written with the attachment rules of safe-files.ts.
 * A staged copy no row will name (its attempt failed) is removed with its folder, so failed
 * turns leave nothing behind in outbox/.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PolyclawError } from '../shared/errors.js';
import { MAX_ATTACHMENT_BYTES, tooLarge } from '../shared/confined.js';
import { writeAttachment } from '../shared/safe-files.js';

/**
 * Copy `source` to outbox/<folder>/<name> of the session; returns the path relative to the
 * session dir, as outbound rows name it. Throws PolyclawError: 'file_missing' (absent or not a
 * regular file), 'file_too_large', 'path_refused' (see writeAttachment).
 */
export function stageOutboxFile(
  sessionDir: string,
  source: string,
  name = path.basename(source),
  folder: string = randomUUID(),
): string {
  const st = fs.statSync(source, { throwIfNoEntry: false });
  if (!st?.isFile())
    throw new PolyclawError('file_missing', `${path.basename(source)} is missing or not a regular file`);
  if (st.size > MAX_ATTACHMENT_BYTES) throw tooLarge(path.basename(source), st.size);
  const written = writeAttachment(path.join(sessionDir, 'outbox'), folder, name, fs.readFileSync(source));
  return path.relative(sessionDir, written);
}

/**
 * Remove staged copies no outbound row will name (paths as stageOutboxFile returned them):
 * each one's outbox/<folder>/ goes. Anything not of that shape is left alone.
 */
export function discardOutboxFiles(sessionDir: string, staged: readonly string[]): void {
  for (const rel of staged) {
    const folder = path.dirname(path.normalize(rel));
    if (path.dirname(folder) !== 'outbox') continue;
    fs.rmSync(path.join(sessionDir, folder), { recursive: true, force: true });
  }
}
