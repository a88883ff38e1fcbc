/** The doorbell is a hint: when its watch cannot start, waits fall back to their timeout. */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Doorbell } from '../src/shared/doorbell.js';
import { createLogger } from '../src/shared/log.js';
import { tempHome } from './support/cli.js';

describe('Doorbell', () => {
  it('a watch that cannot start is logged, not thrown: waits time out and a ring still wakes', async () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'warn', sink: (l) => lines.push(l) });
    const bell = new Doorbell(path.join(tempHome('polyclaw-bell-'), 'missing'), log);
    expect(() => bell.start()).not.toThrow();
    expect(lines.join('\n')).toMatch(/doorbell watch could not start; relying on the safety poll/);
    expect(await bell.wait(20)).toBe('timeout');
    const woken = bell.wait(10_000);
    bell.ring();
    expect(await woken).toBe('rung');
    bell.close();
  });
});
