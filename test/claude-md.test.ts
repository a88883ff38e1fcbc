/** The composed CLAUDE.md of a Claude group: imports, fragments, pruning and the memory file. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { composeClaudeMd, FRAGMENTS_DIR, MEMORY_FILE } from '../src/providers/claude-md.js';
import '../src/providers/index.js';
import { hostProviderRegistry } from '../src/providers/registry.js';
import { DEFAULT_CONFIG_SUBDIR } from '../src/runner/providers/claude-env.js';
import { memoryLogger } from '../src/shared/log.js';
import { tempHome } from './support/cli.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function setup() {
  const root = tempHome('polyclaw-claude-md-');
  dirs.push(root);
  const mdDir = path.join(root, 'md');
  const groupDir = path.join(root, 'group');
  fs.mkdirSync(groupDir, { recursive: true });
  return { mdDir, groupDir };
}

const read = (f: string) => fs.readFileSync(f, 'utf8');

describe('composed CLAUDE.md', () => {
  it('imports the runtime base, one fragment per tool module and per MCP server with instructions, then the memory file', () => {
    const { mdDir, groupDir } = setup();
    const { claudeMd, fragmentsDir } = composeClaudeMd({
      mdDir,
      groupDir,
      toolInstructions: { tasks: 'Use schedule_task for later work.', 'send/x': 'Send with care.' },
      mcpServers: [
        { name: 'github', instructions: 'Use it for pull requests.' },
        { name: 'quiet' }, // no instructions: no fragment
      ],
    });
    const imports = read(claudeMd)
      .split('\n')
      .filter((l) => l.startsWith('@'));
    expect(imports).toEqual([
      `@${FRAGMENTS_DIR}/runtime.md`,
      `@${FRAGMENTS_DIR}/tools/tasks.md`,
      `@${FRAGMENTS_DIR}/tools/send_x.md`,
      `@${FRAGMENTS_DIR}/mcp/github.md`,
      `@${MEMORY_FILE}`,
    ]);
    expect(read(path.join(fragmentsDir, 'runtime.md'))).toMatch(/^# Polyclaw runtime/);
    expect(read(path.join(fragmentsDir, 'tools/tasks.md'))).toBe(
      '## Tool: tasks\n\nUse schedule_task for later work.\n',
    );
    expect(read(path.join(fragmentsDir, 'mcp/github.md'))).toBe(
      '## MCP server: github\n\nUse it for pull requests.\n',
    );
    expect(fs.existsSync(path.join(fragmentsDir, 'mcp/quiet.md'))).toBe(false);
    expect(read(path.join(groupDir, MEMORY_FILE))).toMatch(/^# Memory/);
  });

  it('prunes fragments no longer composed, and never overwrites the memory file', () => {
    const { mdDir, groupDir } = setup();
    composeClaudeMd({
      mdDir,
      groupDir,
      toolInstructions: { tasks: 'a' },
      mcpServers: [{ name: 'github', instructions: 'b' }],
    });
    fs.writeFileSync(path.join(groupDir, MEMORY_FILE), '# Memory\n\nThe user likes tea.\n');
    const { claudeMd, fragmentsDir } = composeClaudeMd({
      mdDir,
      groupDir,
      toolInstructions: {},
      mcpServers: [],
    });
    expect(fs.existsSync(path.join(fragmentsDir, 'tools'))).toBe(false);
    expect(fs.existsSync(path.join(fragmentsDir, 'mcp'))).toBe(false);
    expect(read(claudeMd)).not.toMatch(/github|tasks/);
    expect(read(path.join(groupDir, MEMORY_FILE))).toBe('# Memory\n\nThe user likes tea.\n');
    // Nothing left behind by the atomic writes.
    expect(fs.readdirSync(mdDir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('an unchanged composition is not rewritten (a running sandbox keeps reading the same file)', () => {
    const { mdDir, groupDir } = setup();
    const opts = { mdDir, groupDir, toolInstructions: { tasks: 'a' } };
    const { claudeMd } = composeClaudeMd(opts);
    const inode = fs.statSync(claudeMd).ino;
    composeClaudeMd(opts);
    expect(fs.statSync(claudeMd).ino).toBe(inode);
  });
});

describe('the memory file the agent can replace', () => {
  /** Compose with `memory` planted in place of MEMORY.md; what the host logged, and in how long. */
  function composeWith(plant: (memory: string, outside: string) => void) {
    const { mdDir, groupDir } = setup();
    const outside = path.join(path.dirname(groupDir), 'host-secret.txt');
    fs.writeFileSync(outside, 'HOST-SECRET');
    const memory = path.join(groupDir, MEMORY_FILE);
    plant(memory, outside);
    const log = memoryLogger();
    const started = Date.now();
    const { claudeMd } = composeClaudeMd({ mdDir, groupDir, log });
    return {
      memory,
      outside,
      claudeMd,
      ms: Date.now() - started,
      warnings: log.lines.filter((l) => l.level === 'warn'),
    };
  }

  it('a FIFO is never opened (the host would block for ever): left as is, with a warning', () => {
    const r = composeWith((memory) => {
      expect(spawnSync('mkfifo', [memory]).status).toBe(0);
    });
    expect(r.ms).toBeLessThan(2000);
    expect(fs.lstatSync(r.memory).isFIFO()).toBe(true);
    expect(read(r.claudeMd)).toMatch(new RegExp(`^@${MEMORY_FILE}$`, 'm'));
    expect(r.warnings).toEqual([
      expect.objectContaining({ file: MEMORY_FILE, msg: expect.stringMatching(/not a regular file/) }),
    ]);
  });

  it('a link out of the group folder is neither followed nor replaced, with a warning', () => {
    const r = composeWith((memory, outside) => fs.symlinkSync(outside, memory));
    expect(fs.readlinkSync(r.memory)).toBe(r.outside);
    expect(read(r.outside)).toBe('HOST-SECRET');
    expect(r.warnings).toEqual([
      expect.objectContaining({ file: MEMORY_FILE, msg: expect.stringMatching(/link/) }),
    ]);
  });

  it('a link that leads nowhere (a loop) does not fail the start: left as is, with a warning', () => {
    const r = composeWith((memory) => fs.symlinkSync(MEMORY_FILE, memory));
    expect(fs.readlinkSync(r.memory)).toBe(MEMORY_FILE);
    expect(r.warnings).toHaveLength(1);
  });

  it('a link to a file inside the group folder is the agent’s choice: kept, no warning', () => {
    const r = composeWith((memory) => {
      fs.mkdirSync(path.join(path.dirname(memory), 'notes'));
      fs.writeFileSync(path.join(path.dirname(memory), 'notes', 'memory.md'), '# Mine\n');
      fs.symlinkSync(path.join('notes', 'memory.md'), memory);
    });
    expect(read(r.memory)).toBe('# Mine\n');
    expect(r.warnings).toEqual([]);
  });
});

describe('the claude host contribution', () => {
  it('mounts a per-group config dir (with skill links) that outlives sessions, the composed CLAUDE.md read-only, and names the route', () => {
    const root = tempHome('polyclaw-claude-contrib-');
    dirs.push(root);
    const groupDir = path.join(root, 'groups', 'helper');
    fs.mkdirSync(groupDir, { recursive: true });
    const claude = hostProviderRegistry.get('claude');
    const input = {
      groupName: 'helper',
      groupDir,
      model: 'm',
      effort: null,
      endpoint: 'work',
      mcpServers: [],
      skills: ['pdf'],
      approval: 'bypass' as const,
      config: { opencode: {} },
    };
    const c = claude.contribute(input);
    const config = path.join(root, 'provider-state', 'claude', 'helper', 'config');
    expect(c.mounts).toEqual([
      { source: config, target: `/workspace/agent/${DEFAULT_CONFIG_SUBDIR}`, mode: 'rw' },
      expect.objectContaining({ target: '/workspace/agent/CLAUDE.md', mode: 'ro', file: true }),
      expect.objectContaining({ target: `/workspace/agent/${FRAGMENTS_DIR}`, mode: 'ro' }),
    ]);
    expect(c.env).toEqual({ POLYCLAW_CLAUDE_ROUTE: '/endpoints/work' });
    expect(c.ownsSurfaces).toBe(true);
    expect(fs.lstatSync(path.join(config, 'skills', 'pdf')).isSymbolicLink()).toBe(true);
    // What Claude keeps there (transcripts) is still there at the next session's start.
    fs.mkdirSync(path.join(config, 'projects'), { recursive: true });
    fs.writeFileSync(path.join(config, 'projects', 'session.jsonl'), '{}\n');
    claude.contribute({ ...input, endpoint: null });
    expect(fs.existsSync(path.join(config, 'projects', 'session.jsonl'))).toBe(true);
    expect(claude.contribute({ ...input, endpoint: null }).env).toEqual({
      POLYCLAW_CLAUDE_ROUTE: '/anthropic',
    });
    // Under 'ask' and 'deny' the agent cannot grant itself tools or hooks: the settings files
    // Claude Code reads are the host's, empty and read-only.
    for (const approval of ['ask', 'deny'] as const) {
      const locked = claude.contribute({ ...input, approval }).mounts.slice(3);
      expect(locked.map((m) => [m.target, m.mode, m.file])).toEqual([
        [`/workspace/agent/${DEFAULT_CONFIG_SUBDIR}/settings.json`, 'ro', true],
        ['/workspace/agent/.claude/settings.json', 'ro', true],
      ]);
      expect(JSON.parse(fs.readFileSync(locked[0]!.source, 'utf8'))).toEqual({});
    }
  });
});
