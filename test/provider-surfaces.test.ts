/** Host-composed agent surfaces: skill links and the tool guidance in AGENTS.md. */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { writeAgentsMd } from '../src/providers/codex-agents-md.js';
import { linkSkills } from '../src/providers/skill-links.js';
import { createLogger } from '../src/shared/log.js';
import { tempHome } from './support/cli.js';

let dir: string;
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('provider surfaces', () => {
  it('links the selected skills, removes deselected links, never touches the agent files', () => {
    dir = tempHome();
    const skills = path.join(dir, '.agents', 'skills');
    linkSkills(skills, ['pdf', 'web-search']);
    expect(fs.readlinkSync(path.join(skills, 'pdf'))).toBe('/app/skills/pdf');
    fs.writeFileSync(path.join(skills, 'my-notes.md'), 'mine');
    linkSkills(skills, ['web-search', '../escape']);
    expect(fs.readdirSync(skills).sort()).toEqual(['.._escape', 'my-notes.md', 'web-search']);
    expect(fs.readlinkSync(path.join(skills, '.._escape'))).toBe('/app/skills/.._escape');
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
