/** Pure schedule helpers: cron validation, next runs across DST, and `at` resolution. */
import { describe, expect, it } from 'vitest';
import { nextCronRun, resolveAt, validateCron, validateTimezone } from '../src/shared/schedule.js';
import { localWallTime } from '../src/shared/wall-time.js';

const PARIS = 'Europe/Paris';
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const runs = (expr: string, tz: string, from: string, n: number) => {
  const out: string[] = [];
  let t = Date.parse(from);
  for (let i = 0; i < n; i++) {
    t = nextCronRun(expr, tz, t)!;
    out.push(new Date(t).toISOString());
  }
  return out;
};

describe('validateCron', () => {
  it('accepts 5-field crons', () => {
    for (const c of ['0 9 * * *', '*/15 * * * *', '30 2 * * 1-5', '0 0 1 JAN *', ' 0 9 * * MON '])
      expect(validateCron(c), c).toBeNull();
  });
  it('refuses bad ones with a one-line message that says what to write', () => {
    expect(validateCron('61 * * * *')).toMatch(/invalid cron "61 \* \* \* \*": .*minute.*use 5 fields/);
    expect(validateCron('0 0 * * * *')).toMatch(/requires exactly 5 parts/);
    expect(validateCron('every day')).toMatch(/^invalid cron/);
    expect(validateCron('')).toMatch(/empty/);
    expect(validateCron('0 9 30 2 *')).toMatch(/never matches/);
    // Named as written (croner counts days and months from 0 and said "day: 31" for 32).
    expect(validateCron('0 9 32 * *')).toMatch(/: day-of-month 32 is out of range 1-31;/);
    expect(validateCron('0 9 * 13 *')).toMatch(/: month 13 is out of range 1-12;/);
    expect(validateCron('0 9 1,15,0 * *')).toMatch(/: day-of-month 0 is out of range 1-31;/);
    for (const ok of ['*/15 * * * *', '0 9 * * 7', '0 0 L * *', '0 9 * JAN MON', '0-30/15 * * * *'])
      expect(validateCron(ok)).toBeNull();
    for (const c of ['61 * * * *', 'x', '0 9 30 2 *']) expect(validateCron(c)!.includes('\n')).toBe(false);
  });
  it('knows timezones', () => {
    expect(validateTimezone(PARIS)).toBeNull();
    expect(validateTimezone('Mars/Base')).toMatch(/unknown timezone/);
  });
});

describe('nextCronRun across DST (Europe/Paris)', () => {
  it('a 02:30 daily job runs once on spring-forward day, just after the gap, then at 02:30 again', () => {
    // 2026-03-29: 02:00 CET → 03:00 CEST, so 02:30 does not exist that day.
    expect(runs('30 2 * * *', PARIS, '2026-03-27T12:00:00Z', 4)).toEqual([
      '2026-03-28T01:30:00.000Z', // 02:30 CET
      '2026-03-29T01:00:00.000Z', // 03:00 CEST, first valid time after the gap
      '2026-03-30T00:30:00.000Z', // 02:30 CEST
      '2026-03-31T00:30:00.000Z',
    ]);
  });
  it('a job at listed or ranged hours (02:30 and 14:30) is fixed-time too: its 02:30 is not lost on spring-forward day', () => {
    for (const cron of ['30 2,14 * * *', '30 2-3 * * *'])
      expect(runs(cron, PARIS, '2026-03-28T23:00:00Z', 2)[0]).toBe('2026-03-29T01:00:00.000Z'); // 03:00 CEST
  });
  it('a 02:30 daily job runs once on fall-back day, though 02:30 happens twice', () => {
    // 2026-10-25: 03:00 CEST → 02:00 CET.
    expect(runs('30 2 * * *', PARIS, '2026-10-23T12:00:00Z', 4)).toEqual([
      '2026-10-24T00:30:00.000Z',
      '2026-10-25T00:30:00.000Z', // the first 02:30 (CEST)
      '2026-10-26T01:30:00.000Z', // 02:30 CET
      '2026-10-27T01:30:00.000Z',
    ]);
  });
  it('a 09:00 daily job stays at 09:00 local through both changes', () => {
    for (const from of ['2026-03-27T12:00:00Z', '2026-10-23T12:00:00Z']) {
      const r = runs('0 9 * * *', PARIS, from, 4);
      expect(r.map((x) => localWallTime(Date.parse(x), PARIS).slice(11))).toEqual(Array(4).fill('09:00'));
      // The UTC hour changes across the switch: 08:00Z in winter, 07:00Z in summer.
      expect(new Set(r.map((x) => x.slice(11, 13))).size).toBe(2);
    }
  });
  it('is strictly after the given instant (no double fire of the same slot)', () => {
    const t = Date.parse('2026-06-01T07:00:00Z'); // 09:00 CEST
    expect(iso(nextCronRun('0 9 * * *', PARIS, t))).toBe('2026-06-02T07:00:00.000Z');
  });
  it('throws a clear error for a bad cron', () => {
    expect(() => nextCronRun('nope', PARIS, 0)).toThrow(/invalid cron/);
  });
});

describe('day-of-month and day-of-week together, as Vixie cron reads them', () => {
  it('both restricted: either matches (the 1st and 15th, and every Friday)', () => {
    expect(runs('0 9 1,15 * 5', 'UTC', '2026-05-31T12:00:00Z', 4)).toEqual([
      '2026-06-01T09:00:00.000Z',
      '2026-06-05T09:00:00.000Z',
      '2026-06-12T09:00:00.000Z',
      '2026-06-15T09:00:00.000Z',
    ]);
  });
  it('a field that starts with "*" (a step) restricts together with the other: Mondays on odd dates only', () => {
    expect(runs('0 9 */2 * 1', 'UTC', '2026-05-31T12:00:00Z', 3)).toEqual([
      '2026-06-01T09:00:00.000Z',
      '2026-06-15T09:00:00.000Z',
      '2026-06-29T09:00:00.000Z',
    ]);
    // the 13th when it is a Sunday (*/7 is 0 and 7)
    expect(runs('0 9 13 * */7', 'UTC', '2026-01-01T00:00:00Z', 1)).toEqual(['2026-09-13T09:00:00.000Z']);
  });
});

describe('resolveAt', () => {
  const now = Date.parse('2026-06-01T10:00:00Z');
  it('reads ISO-8601 with Z or an offset', () => {
    expect(resolveAt('2026-12-01T09:30:00Z', PARIS, now)).toEqual({
      ok: true,
      ms: Date.parse('2026-12-01T09:30:00Z'),
    });
    expect(resolveAt('2026-12-01T09:30:00+01:00', PARIS, now)).toEqual({
      ok: true,
      ms: Date.parse('2026-12-01T08:30:00Z'),
    });
    expect(resolveAt('2026-12-01T09:30-0530', PARIS, now)).toEqual({
      ok: true,
      ms: Date.parse('2026-12-01T15:00:00Z'),
    });
    expect(resolveAt('2026-12-01T09:30:00.250Z', PARIS, now)).toEqual({
      ok: true,
      ms: Date.parse('2026-12-01T09:30:00.250Z'),
    });
  });
  it('reads a local wall-clock time in the given timezone', () => {
    expect(resolveAt('2026-12-01 09:30', PARIS, now)).toEqual({
      ok: true,
      ms: Date.parse('2026-12-01T08:30:00Z'),
    });
    expect(resolveAt('2026-07-01T09:30', PARIS, now)).toEqual({
      ok: true,
      ms: Date.parse('2026-07-01T07:30:00Z'),
    });
    expect(resolveAt('2026-07-01 09:30', 'America/New_York', now)).toEqual({
      ok: true,
      ms: Date.parse('2026-07-01T13:30:00Z'),
    });
  });
  it('moves a time in a DST gap forward by the gap, and takes the earlier of a repeated time', () => {
    const before = Date.parse('2026-01-01T00:00:00Z');
    expect(iso((resolveAt('2027-03-28 02:30', PARIS, before) as { ms: number }).ms)).toBe(
      '2027-03-28T01:30:00.000Z',
    ); // 03:30 CEST
    expect(iso((resolveAt('2026-10-25 02:30', PARIS, before) as { ms: number }).ms)).toBe(
      '2026-10-25T00:30:00.000Z',
    ); // first 02:30
  });
  it('refuses times in the past, saying what now is', () => {
    const r = resolveAt('2026-06-01 11:59', PARIS, now); // 09:59Z
    expect(r).toEqual({
      ok: false,
      error: expect.stringMatching(/is in the past \(now is 2026-06-01 12:00 in Europe\/Paris\)/),
    });
    expect(resolveAt('2026-06-01T10:00:00Z', PARIS, now).ok).toBe(false);
  });
  it('refuses garbage, impossible dates and unknown zones', () => {
    expect(resolveAt('tomorrow', PARIS, now)).toMatchObject({
      ok: false,
      error: expect.stringMatching(/ISO-8601/),
    });
    expect(resolveAt('2026-02-30 09:00', PARIS, now)).toMatchObject({
      ok: false,
      error: expect.stringMatching(/not a real date/),
    });
    expect(resolveAt('2026-12-01 25:00', PARIS, now).ok).toBe(false);
    expect(resolveAt('2026-12-01 09:00', 'Mars/Base', now)).toMatchObject({
      ok: false,
      error: expect.stringMatching(/timezone/),
    });
  });
});
