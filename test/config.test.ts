/** Configuration is read and checked in one place: a bad value is one line naming it, at start. */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/host/config.js';
import { tempHome } from './support/cli.js';

const homes: string[] = [];
afterEach(() => {
  for (const h of homes.splice(0)) fs.rmSync(h, { recursive: true, force: true });
});
const home = () => {
  const h = tempHome('polyclaw-config-');
  homes.push(h);
  return h;
};

describe('config', () => {
  it('refuses an unknown default timezone, from the environment or the file, before anything runs', () => {
    const h = home();
    expect(() => loadConfig({ POLYCLAW_HOME: h, POLYCLAW_TZ: 'Nowhere/Land' })).toThrow(
      'config timezone: unknown timezone "Nowhere/Land" (use an IANA name such as Europe/Paris)',
    );
    fs.writeFileSync(path.join(h, 'config.json'), JSON.stringify({ timezone: 'Mars/X' }));
    expect(() => loadConfig({ POLYCLAW_HOME: h })).toThrow(/config timezone: unknown timezone "Mars\/X"/);
    fs.writeFileSync(path.join(h, 'config.json'), JSON.stringify({ timezone: 'Europe/Paris' }));
    expect(loadConfig({ POLYCLAW_HOME: h }).timezone).toBe('Europe/Paris');
  });

  it('names a non-integer number and a value of the wrong type', () => {
    const h = home();
    expect(() => loadConfig({ POLYCLAW_HOME: h, POLYCLAW_MAX_TURN_MS: 'soon' })).toThrow(
      'POLYCLAW_MAX_TURN_MS must be an integer, got "soon"',
    );
    fs.writeFileSync(path.join(h, 'config.json'), JSON.stringify({ maxTurnMs: 'soon' }));
    expect(() => loadConfig({ POLYCLAW_HOME: h })).toThrow(/^config maxTurnMs: /);
  });
});
