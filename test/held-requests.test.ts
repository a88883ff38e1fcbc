/** The shared "held permission request" bookkeeping every provider's 'ask' policy builds on. */
import { describe, expect, it } from 'vitest';
import { HeldRequests, type Decision } from '../src/runner/providers/held-requests.js';

describe('HeldRequests', () => {
  it('settles each request once, forgets what the CLI settled, and denies the rest at the end', () => {
    const counts: number[] = [];
    const held = new HeldRequests((n) => counts.push(n));
    const got: Record<string, Decision[]> = { a: [], b: [], c: [], d: [] };
    for (const id of Object.keys(got)) held.hold(id, (d) => got[id]!.push(d));
    expect(held.decide('a', { allow: true })).toBe(true);
    expect(held.decide('a', { allow: false, reason: 'late' })).toBe(false);
    held.forget('b');
    expect(held.decide('b', { allow: true })).toBe(false);
    held.denyAll('The turn ended before anyone approved.');
    held.denyAll('again');
    expect(got).toEqual({
      a: [{ allow: true }],
      b: [],
      c: [{ allow: false, reason: 'The turn ended before anyone approved.' }],
      d: [{ allow: false, reason: 'The turn ended before anyone approved.' }],
    });
    expect(counts).toEqual([1, 2, 3, 4, 3, 2, 1, 0]);
    expect(held.size).toBe(0);
  });
});
