/** Which group setting changes need a new sandbox, and which a warm one serves unchanged. */
import { describe, expect, it } from 'vitest';
import { runtimeSignature } from '../src/host/runtime-signature.js';
import { GroupSettings } from '../src/host/store/groups.js';

const base = GroupSettings.parse({ provider: 'mock', timezone: 'Europe/Paris' });
const changes = (patch: Partial<GroupSettings>) =>
  runtimeSignature(base) !== runtimeSignature({ ...base, ...patch });

describe('runtime signature', () => {
  it('an assistant-name change keeps the sandbox; a model change retires it', () => {
    expect(changes({ assistantName: 'Pal' })).toBe(false);
    expect(changes({ model: 'other' })).toBe(true);
  });

  it('a timezone change retires the sandbox: its shell clock (TZ) is set when it starts', () => {
    expect(changes({ timezone: 'Asia/Tokyo' })).toBe(true);
    expect(changes({ timezone: null })).toBe(true);
  });
});
