/**
 * Composes a Claude group's CLAUDE.md at every sandbox start. Layout under the group's
 * provider-state dir (md/):
 *   CLAUDE.md                 @-imports, in order: runtime base, tool fragments, MCP fragments,
 *                             then the group's own memory file (MEMORY.md in the group folder)
 *   fragments/runtime.md      shared runtime base
 *   fragments/tools/<m>.md    one per tool module with instructions
 *   fragments/mcp/<name>.md   one per MCP server of the group with instructions
 * Invariants: every write is atomic (temp file + rename) and skipped when unchanged; fragments
 * no longer composed are pruned; the memory file is created once and never overwritten (it is
 * the agent's to edit). Claude Code resolves @-imports relative to the importing file.
 *
 * The memory file lives in the group folder, which sandboxes of the group write, possibly while
 * this runs: the host never opens it (a FIFO there would block the host for ever, a symlink
 * would lead it out of the folder). Whether to seed it is decided on lstat, and the seed is
 * put in place with link(), which fails on any name already there instead of following or
 * replacing it. Whatever else the agent put at that name stays, with a warning.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createLogger, type Logger } from '../shared/log.js';
import { TOOL_INSTRUCTIONS } from '../shared/tool-instructions.js';
import { writeTemp } from '../shared/atomic-file.js';

export const FRAGMENTS_DIR = '.polyclaw-claude';
export const MEMORY_FILE = 'MEMORY.md';

const RUNTIME = `# Polyclaw runtime

You are a personal assistant running inside Polyclaw. People talk to you from chat apps; each
message arrives as a <message> element. Your final text answer is delivered to the chat it
answers. Work in your folder (the current directory); it persists between conversations.
Keep long-term notes in ${MEMORY_FILE} (yours to edit); the rest of this file is regenerated at
every start. Earlier conversations are archived in conversations/.
`;

const MEMORY_SEED = `# Memory\n\nNotes you want to keep across conversations.\n`;

export interface McpServerInfo {
  name: string;
  instructions?: string;
}

/** For the host's own files (md/): reads them to skip an unchanged write. */
function writeAtomic(file: string, text: string): void {
  try {
    if (fs.readFileSync(file, 'utf8') === text) return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.renameSync(writeTemp(file, text), file);
}

/** Whether the link at `file` leads to a regular file inside `dir` (resolved, never opened). */
function linksInside(file: string, dir: string): boolean {
  let real: string;
  try {
    real = fs.realpathSync(file);
  } catch {
    return false; // dangling, a loop, or unreachable: it leads to no file
  }
  const root = fs.realpathSync(dir);
  return real.startsWith(root + path.sep) && fs.statSync(real, { throwIfNoEntry: false })?.isFile() === true;
}

/** Seed the memory file when nothing is at its name; never open, follow or replace what is. */
function seedMemory(groupDir: string, log: Logger): void {
  const memory = path.join(groupDir, MEMORY_FILE);
  const st = fs.lstatSync(memory, { throwIfNoEntry: false });
  if (st) {
    if (st.isFile() || (st.isSymbolicLink() && linksInside(memory, groupDir))) return;
    const problem = st.isSymbolicLink()
      ? 'is a link that leads to no file inside the group folder'
      : 'is not a regular file';
    log.warn(`the memory file ${problem}; left as is, unread`, { file: MEMORY_FILE, groupDir });
    return;
  }
  const tmp = writeTemp(memory, MEMORY_SEED);
  try {
    fs.linkSync(tmp, memory);
  } catch (err) {
    // The agent made one meanwhile: it is theirs, kept.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

const safeName = (s: string) => s.replace(/[^A-Za-z0-9_.-]/g, '_');

/** Writes the composition into `mdDir`; returns the paths the sandbox mounts. */
export function composeClaudeMd(opts: {
  mdDir: string;
  groupDir: string;
  mcpServers?: McpServerInfo[];
  toolInstructions?: Readonly<Record<string, string>>;
  log?: Logger;
}): { claudeMd: string; fragmentsDir: string } {
  const log = opts.log ?? createLogger().child('claude-md');
  const frag = path.join(opts.mdDir, 'fragments');
  const want = new Map<string, string>([['runtime.md', RUNTIME]]);
  for (const [mod, text] of Object.entries(opts.toolInstructions ?? TOOL_INSTRUCTIONS))
    want.set(`tools/${safeName(mod)}.md`, `## Tool: ${mod}\n\n${text.trim()}\n`);
  for (const s of opts.mcpServers ?? [])
    if (s.instructions?.trim())
      want.set(`mcp/${safeName(s.name)}.md`, `## MCP server: ${s.name}\n\n${s.instructions.trim()}\n`);
  for (const [rel, text] of want) writeAtomic(path.join(frag, rel), text);
  prune(frag, frag, new Set(want.keys()));
  seedMemory(opts.groupDir, log);
  const imports = [...want.keys()].map((rel) => `@${FRAGMENTS_DIR}/${rel}`);
  const claudeMd = path.join(opts.mdDir, 'CLAUDE.md');
  writeAtomic(
    claudeMd,
    `<!-- Composed by Polyclaw at every start: edits here are lost. Your memory: ${MEMORY_FILE} -->\n` +
      [...imports, `@${MEMORY_FILE}`].join('\n') +
      '\n',
  );
  return { claudeMd, fragmentsDir: frag };
}

function prune(root: string, dir: string, keep: Set<string>): void {
  if (!fs.existsSync(dir)) return;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      prune(root, p, keep);
      if (fs.readdirSync(p).length === 0) fs.rmdirSync(p);
    } else if (!keep.has(path.relative(root, p))) fs.rmSync(p);
  }
}
