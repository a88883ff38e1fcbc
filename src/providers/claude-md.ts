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
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { TOOL_INSTRUCTIONS } from '../shared/tool-instructions.js';

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

function writeAtomic(file: string, text: string): void {
  try {
    if (fs.readFileSync(file, 'utf8') === text) return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  // A name no one can plant ahead (the memory file's folder is the sandbox's), created new:
  // a symlink or FIFO already there fails the open instead of being written through.
  const tmp = `${file}.${randomUUID()}.tmp`;
  const fd = fs.openSync(
    tmp,
    fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW,
    0o644,
  );
  try {
    fs.writeSync(fd, text);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

const safeName = (s: string) => s.replace(/[^A-Za-z0-9_.-]/g, '_');

/** Writes the composition into `mdDir`; returns the paths the sandbox mounts. */
export function composeClaudeMd(opts: {
  mdDir: string;
  groupDir: string;
  mcpServers?: McpServerInfo[];
  toolInstructions?: Readonly<Record<string, string>>;
}): { claudeMd: string; fragmentsDir: string } {
  const frag = path.join(opts.mdDir, 'fragments');
  const want = new Map<string, string>([['runtime.md', RUNTIME]]);
  for (const [mod, text] of Object.entries(opts.toolInstructions ?? TOOL_INSTRUCTIONS))
    want.set(`tools/${safeName(mod)}.md`, `## Tool: ${mod}\n\n${text.trim()}\n`);
  for (const s of opts.mcpServers ?? [])
    if (s.instructions?.trim())
      want.set(`mcp/${safeName(s.name)}.md`, `## MCP server: ${s.name}\n\n${s.instructions.trim()}\n`);
  for (const [rel, text] of want) writeAtomic(path.join(frag, rel), text);
  prune(frag, frag, new Set(want.keys()));
  const memory = path.join(opts.groupDir, MEMORY_FILE);
  if (!fs.existsSync(memory)) writeAtomic(memory, MEMORY_SEED);
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
