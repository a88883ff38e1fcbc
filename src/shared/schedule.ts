/**
 * Time helpers shared by the task tools (sandbox) and the scheduler (host): cron validation
 * and next-run computation through `croner`, and resolution of a one-shot `at` to an instant.
 * Pure apart from the clock values passed in; no host-only imports.
 *
 * Invariants:
 * - Cron is standard 5 fields (minute hour day-of-month month day-of-week), evaluated in an
 *   IANA timezone. DST follows Vixie cron: a fixed-time job (no wildcard or step in minute and
 *   hour, so `30 2 * * *` and also `30 2,14 * * *` or `30 2-3 * * *`) whose time falls in a
 *   spring-forward gap runs at the first valid time after the gap, and runs once when its time
 *   occurs twice; interval jobs (`*\/15 * * * *`, `0 * * * *`) skip gap times and run on both
 *   occurrences of a repeated time. Day-of-month and day-of-week combine as in Vixie cron
 *   (starredDay).
 * - A local wall-clock `at` (`2026-12-01 09:30`, `2026-12-01T09:30[:ss]`) is read in the group's
 *   timezone. In a DST gap it is moved forward by the gap's length (02:30 on a 02:00→03:00
 *   spring-forward day is 03:30); in an overlap the earlier instant wins (the first 02:30).
 *   This is the "compatible" disambiguation of Temporal and of most calendars.
 * - Times in the past are refused: a one-shot task must be in the future when scheduled.
 */
import { Cron } from 'croner';
import { badRequest } from './errors.js';
import { localWallTime, wallToInstant } from './wall-time.js';

const CRON_HINT = 'use 5 fields "minute hour day-of-month month day-of-week", e.g. "0 9 * * 1-5"';

/** A Cron evaluator (never scheduled: no callback, no timer). Throws croner's error on bad input. */
function evaluator(expr: string, timezone?: string): Cron {
  return new Cron(expr.trim(), {
    mode: '5-part',
    fixedTimeRule: 'no-wildcard',
    domAndDow: starredDay(expr),
    ...(timezone ? { timezone } : {}),
  });
}

/**
 * Vixie cron matches a day when day-of-month OR day-of-week matches, unless either field
 * starts with "*" (a step such as "*\/2" included): then both must. croner treats only a bare
 * "*" so, which read "0 9 *\/2 * 1" as every odd date and every Monday.
 */
function starredDay(expr: string): boolean {
  const f = expr.trim().split(/\s+/);
  return f.length === 5 && (/^[*?]/.test(f[2]!) || /^[*?]/.test(f[4]!));
}

/** The fields of a 5-field cron and the numbers each takes (day of week: 0 or 7 is Sunday). */
const FIELDS: Array<[string, number, number]> = [
  ['minute', 0, 59],
  ['hour', 0, 23],
  ['day-of-month', 1, 31],
  ['month', 1, 12],
  ['day-of-week', 0, 7],
];

/** A number out of its field's range, named as written (croner counts days and months from 0). */
function outOfRange(e: string): string | null {
  const parts = e.split(/\s+/);
  if (parts.length !== FIELDS.length) return null;
  for (const [i, [name, lo, hi]] of FIELDS.entries()) {
    // Numbers before a "/" are values; a step after it is not.
    for (const item of parts[i]!.split(',')) {
      for (const n of (item.split('/')[0] ?? '').match(/\d+/g) ?? []) {
        if (Number(n) < lo || Number(n) > hi) return `${name} ${n} is out of range ${lo}-${hi}`;
      }
    }
  }
  return null;
}

/** null when `expr` is a valid 5-field cron that matches some future date; else a one-line error. */
export function validateCron(expr: string): string | null {
  const e = expr.trim();
  if (!e) return `cron is empty: ${CRON_HINT}`;
  const range = outOfRange(e);
  if (range) return `invalid cron "${e}": ${range}; ${CRON_HINT}`;
  let cron: Cron;
  try {
    cron = evaluator(e);
  } catch (err) {
    const why = (err instanceof Error ? err.message : String(err)).replace(/^CronPattern:\s*/, '');
    return `invalid cron "${e}": ${why.split('\n')[0]}; ${CRON_HINT}`;
  }
  if (cron.nextRun() === null) return `cron "${e}" never matches any date (check day and month)`;
  return null;
}

/** null when `tz` is an IANA timezone this runtime knows; else a one-line error. */
export function validateTimezone(tz: string): string | null {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return null;
  } catch {
    return `unknown timezone "${tz}" (use an IANA name such as Europe/Paris)`;
  }
}

/** The first run of `expr` strictly after `afterMs`, in `timezone`; null when it never runs again. */
export function nextCronRun(expr: string, timezone: string, afterMs: number): number | null {
  const bad = validateCron(expr) ?? validateTimezone(timezone);
  if (bad) throw badRequest(bad);
  return evaluator(expr, timezone).nextRun(new Date(afterMs))?.getTime() ?? null;
}

export type ResolvedAt = { ok: true; ms: number } | { ok: false; error: string };

const ABSOLUTE =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?(Z|[+-]\d{2}:?\d{2})$/i;
const LOCAL = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?$/;

/**
 * Resolve a one-shot time: ISO-8601 with `Z` or an offset, or a local wall-clock time in
 * `timezone`. Refuses unparsable input, impossible dates and instants not after `nowMs`.
 */
export function resolveAt(at: string, timezone: string, nowMs: number): ResolvedAt {
  const s = at.trim();
  const tzErr = validateTimezone(timezone);
  if (tzErr) return { ok: false, error: tzErr };
  let ms: number;
  const abs = ABSOLUTE.exec(s);
  const loc = abs ? null : LOCAL.exec(s);
  if (abs) {
    const f = fields(abs);
    if (!f) return { ok: false, error: `"${at}" is not a real date and time` };
    const off = abs[8]!.toUpperCase();
    const offMin = off === 'Z' ? 0 : offsetMinutes(off);
    if (offMin === null) return { ok: false, error: `"${at}" has an invalid UTC offset` };
    ms = f + Number((abs[7] ?? '0').padEnd(3, '0')) - offMin * 60_000;
  } else if (loc) {
    const f = fields(loc);
    if (f === null) return { ok: false, error: `"${at}" is not a real date and time` };
    ms = wallToInstant(f, timezone);
  } else {
    return {
      ok: false,
      error: `cannot read "${at}" as a time: use ISO-8601 with an offset ("2026-12-01T09:30:00+01:00") or a local time in ${timezone} ("2026-12-01 09:30")`,
    };
  }
  if (ms <= nowMs) {
    return {
      ok: false,
      error: `${s} is in the past (now is ${localWallTime(nowMs, timezone)} in ${timezone}); give a future time`,
    };
  }
  return { ok: true, ms };
}

/** Wall-clock fields of a regex match as a UTC "wall" number, or null when the date is impossible. */
function fields(m: RegExpExecArray): number | null {
  const [y, mo, d, h, mi, sec] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i] ?? '0')) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59) return null;
  const wall = Date.UTC(y, mo - 1, d, h, mi, sec);
  if (new Date(wall).getUTCDate() !== d) return null; // e.g. 2026-02-30
  return wall;
}

function offsetMinutes(off: string): number | null {
  const m = /^([+-])(\d{2}):?(\d{2})$/.exec(off);
  if (!m) return null;
  const h = Number(m[2]);
  const mi = Number(m[3]);
  if (h > 18 || mi > 59) return null;
  return (m[1] === '-' ? -1 : 1) * (h * 60 + mi);
}
