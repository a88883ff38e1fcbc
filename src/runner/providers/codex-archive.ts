/**
 * What Codex does not keep for us in the group folder: an archive of each exchange (codex's
 * own rollouts live in CODEX_HOME and are not meant for reading) and the memory scaffold.
 * Invariants: archive files are never overwritten (unique names, exclusive create); an empty
 * result is not archived; scaffold files are created only when missing (the agent owns them after).
 * Generated images are found under CODEX_HOME/generated_images/<thread>/.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface ArchivedExchange {
  prompt: string;
  result: string | null;
  threadId: string;
  status: 'completed' | 'failed';
}

const stamp = (ms: number) => new Date(ms).toISOString().replace(/[:.]/g, '-');

/** Writes conversations/<stamp>-<n>.md; returns its path, or null when there was nothing to keep. */
export function archiveExchange(agentDir: string, ex: ArchivedExchange, now = Date.now()): string | null {
  if (!ex.result?.trim()) return null;
  const dir = path.join(agentDir, 'conversations');
  fs.mkdirSync(dir, { recursive: true });
  const body = [
    `# Exchange ${new Date(now).toISOString()}`,
    '',
    `- thread: ${ex.threadId}`,
    `- status: ${ex.status}`,
    '',
    '## Prompt',
    '',
    ex.prompt,
    '',
    '## Result',
    '',
    ex.result,
    '',
  ].join('\n');
  for (let n = 0; n < 1000; n++) {
    const file = path.join(dir, `${stamp(now)}${n ? `-${n}` : ''}.md`);
    try {
      fs.writeFileSync(file, body, { flag: 'wx' });
      return file;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  throw new Error(`could not find a free archive name in ${dir}`);
}

const DEFINITION = `# Memory system

Your long-term memory lives in files under \`memory/\` in this folder.
- \`memory/index.md\` lists what you remember, one line per file with a short description.
- Write new facts to a file under \`memory/\` and add a line for it to the index.
- Past conversations are archived under \`conversations/\`; search them when you need context.
`;

export function scaffoldMemory(agentDir: string): void {
  const mem = path.join(agentDir, 'memory');
  fs.mkdirSync(path.join(mem, 'system'), { recursive: true });
  const create = (file: string, text: string) => {
    try {
      fs.writeFileSync(file, text, { flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  };
  create(path.join(mem, 'system', 'definition.md'), DEFINITION);
  create(path.join(mem, 'index.md'), '# Memory index\n\n');
}

/**
 * Files under generated_images/<thread>/ modified at or after sinceMs. Regular files only, never
 * followed: the agent can write there, and a dangling or outward link must neither fail the
 * turn nor be attached.
 */
export function generatedImages(codexHome: string, threadId: string, sinceMs: number): string[] {
  const dir = path.join(codexHome, 'generated_images', threadId);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names
    .map((n) => path.join(dir, n))
    .filter((p) => {
      const st = fs.lstatSync(p, { throwIfNoEntry: false });
      return !!st && st.isFile() && st.mtimeMs >= sinceMs - 1000;
    })
    .sort();
}
