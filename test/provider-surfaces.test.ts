/** Host-composed agent surfaces: skill links and the tool guidance in AGENTS.md. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AGENTS_MD_CAP, writeAgentsMd } from '../src/providers/codex-agents-md.js';
import { linkSkills } from '../src/providers/skill-links.js';
import { createLogger } from '../src/shared/log.js';
import { tempHome } from './support/cli.js';

let dir: string;
const log = createLogger({ level: 'error' });
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('provider surfaces', () => {
  it('links the selected skills, removes deselected links, never touches the agent files', () => {
    dir = tempHome();
    const skills = path.join(dir, '.agents', 'skills');
    linkSkills(dir, '.agents/skills', ['pdf', 'web-search'], log);
    expect(fs.readlinkSync(path.join(skills, 'pdf'))).toBe('/app/skills/pdf');
    fs.writeFileSync(path.join(skills, 'my-notes.md'), 'mine');
    linkSkills(dir, '.agents/skills', ['web-search', '../escape'], log);
    expect(fs.readdirSync(skills).sort()).toEqual(['.._escape', 'my-notes.md', 'web-search']);
    expect(fs.readlinkSync(path.join(skills, '.._escape'))).toBe('/app/skills/.._escape');
  });

  it('keeps skill links in the real folder when the sandbox made it, or a folder above it, a symlink', () => {
    dir = tempHome();
    const host = path.join(dir, 'host');
    fs.mkdirSync(host);
    fs.symlinkSync('/usr/bin/env', path.join(host, 'dotfile-link'));
    const group = path.join(dir, 'group');
    fs.mkdirSync(path.join(group, '.agents'), { recursive: true });
    fs.symlinkSync(host, path.join(group, '.agents', 'skills'));
    linkSkills(group, '.agents/skills', ['pdf'], log);
    fs.rmSync(path.join(group, '.agents'), { recursive: true });
    fs.symlinkSync(host, path.join(group, '.agents'));
    linkSkills(group, '.agents/skills', ['pdf'], log);
    expect(fs.readdirSync(host)).toEqual(['dotfile-link']);
    expect(fs.lstatSync(path.join(group, '.agents')).isDirectory()).toBe(true);
    expect(fs.readlinkSync(path.join(group, '.agents', 'skills', 'pdf'))).toBe('/app/skills/pdf');
  });

  it('skips the links, with a warning, when the sandbox put a file where their folder goes', () => {
    dir = tempHome();
    fs.writeFileSync(path.join(dir, '.agents'), 'mine');
    const lines: string[] = [];
    const warn = createLogger({ level: 'warn', sink: (l) => lines.push(l) });
    expect(() => linkSkills(dir, '.agents/skills', ['pdf'], warn)).not.toThrow();
    expect(fs.readFileSync(path.join(dir, '.agents'), 'utf8')).toBe('mine');
    expect(lines.join('\n')).toMatch(
      /skills not linked: the sandbox put something else where their folder goes/,
    );
  });

  it('inlines a long memory index only in part: the skills and the tools still fit under the cap', () => {
    dir = tempHome();
    const group = path.join(dir, 'group');
    fs.mkdirSync(path.join(group, 'memory'), { recursive: true });
    const entries = Array.from({ length: 800 }, (_, i) => `- notes-${i}.md: what I keep about topic ${i}`);
    fs.writeFileSync(path.join(group, 'memory', 'index.md'), entries.join('\n'));
    const text = fs.readFileSync(
      writeAgentsMd(path.join(dir, 'AGENTS.md'), { groupDir: group, skills: ['pdf'], mcpServers: [] }, log),
      'utf8',
    );
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(AGENTS_MD_CAP);
    expect(text).toContain('- notes-0.md: what I keep about topic 0\n');
    expect(text).not.toContain('topic 799');
    expect(text).toContain('… (the index goes on: read memory/index.md for the rest)');
    expect(text).toContain('## Skills');
    expect(text).toContain('## Tools: ');
  });

  it('never inlines a memory index the sandbox pointed elsewhere, nor blocks on a FIFO there', () => {
    dir = tempHome();
    fs.writeFileSync(path.join(dir, 'vault.key'), 'HOST-SECRET');
    const group = path.join(dir, 'group');
    const compose = () =>
      fs.readFileSync(
        writeAgentsMd(
          path.join(dir, 'AGENTS.md'),
          { groupDir: group, skills: [], mcpServers: [] },
          createLogger({ level: 'error' }),
        ),
        'utf8',
      );
    fs.mkdirSync(path.join(group, 'memory'), { recursive: true });
    fs.writeFileSync(path.join(group, 'memory', 'index.md'), '- notes.md: my notes');
    expect(compose()).toContain('- notes.md: my notes');
    fs.rmSync(path.join(group, 'memory', 'index.md'));
    fs.symlinkSync(path.join(dir, 'vault.key'), path.join(group, 'memory', 'index.md'));
    expect(compose()).not.toContain('HOST-SECRET');
    fs.rmSync(path.join(group, 'memory'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'elsewhere'));
    fs.copyFileSync(path.join(dir, 'vault.key'), path.join(dir, 'elsewhere', 'index.md'));
    fs.symlinkSync(path.join(dir, 'elsewhere'), path.join(group, 'memory'));
    expect(compose()).not.toContain('HOST-SECRET');
    fs.rmSync(path.join(group, 'memory'));
    fs.mkdirSync(path.join(group, 'memory'));
    execFileSync('mkfifo', [path.join(group, 'memory', 'index.md')]);
    expect(compose()).toContain('(no memory index yet)');
  });

  it('composes AGENTS.md with the tool guidance of every tool module', () => {
    dir = tempHome();
    const file = writeAgentsMd(
      path.join(dir, 'AGENTS.md'),
      { groupDir: dir, skills: ['pdf'], mcpServers: [] },
      createLogger({ level: 'error' }),
    );
    const text = fs.readFileSync(file, 'utf8');
    expect(text).toContain('send_message');
    expect(text).toContain('schedule_task');
    expect(text).toContain('.agents/skills/');
  });
});
