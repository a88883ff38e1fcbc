/**
 * OpenCode's per-group file (.polyclaw-opencode.json): the agent can write it, so whatever it
 * holds fails the provider with a one-line configuration error naming the file, never a bare
 * parser error that the runner would retry as a crash.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  GROUP_FILE,
  OpencodeSettingsError,
  readSettings,
} from '../src/runner/providers/opencode-settings.js';
import { ProviderConfigError } from '../src/shared/provider.js';
import { tempHome } from './support/cli.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const env = { POLYCLAW_GATEWAY_URL: 'http://127.0.0.1:9' };

/** What readSettings throws for a group file holding `text`. */
function refusal(text: string): Error {
  const dir = tempHome('polyclaw-oc-settings-');
  dirs.push(dir);
  fs.writeFileSync(path.join(dir, GROUP_FILE), text);
  try {
    readSettings({ agentDir: dir, env, binary: 'x' });
  } catch (err) {
    return err as Error;
  }
  throw new Error('readSettings accepted the file');
}

describe('the group file of OpenCode settings', () => {
  it('a file that is not JSON is a configuration error naming the file', () => {
    const err = refusal('{ "idleTimeoutMs": 9000');
    expect(err).toBeInstanceOf(OpencodeSettingsError);
    expect(err).toBeInstanceOf(ProviderConfigError);
    expect(err.message).toMatch(new RegExp(`^${GROUP_FILE.replace('.', '\\.')} is not valid JSON: \\S`));
    expect(err.message).not.toContain('\n');
  });

  it('JSON of the wrong shape is one line naming the file and the field', () => {
    for (const [text, want] of [
      ['{"idleTimeoutMs": "soon"}', /idleTimeoutMs/],
      ['{"maxRetries": 1.5}', /maxRetries/],
      ['{"colour": "blue"}', /colour/],
      ['[1, 2]', /object/],
    ] as const) {
      const err = refusal(text);
      expect(err).toBeInstanceOf(OpencodeSettingsError);
      expect(err.message.startsWith(`${GROUP_FILE}: `)).toBe(true);
      expect(err.message).toMatch(want);
      expect(err.message).not.toContain('\n');
    }
  });
});
