/**
 * Wall-clock time in an IANA timezone, from Intl alone (no dependency, so the runner can load
 * it without the scheduler). Building an Intl.DateTimeFormat costs ~0.5 ms, so one is kept
 * per timezone; formatting with it costs microseconds.
 */
const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(tz, f);
  }
  return f;
}

/** The wall clock of `ms` in `tz`, as a UTC "wall" number (whole seconds). */
function wallOf(ms: number, tz: string): number {
  const p = formatter(tz).formatToParts(new Date(ms));
  const get = (t: string) => Number(p.find((x) => x.type === t)?.value ?? '0');
  return Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
}

/** UTC offset of `tz` at instant `ms`, in ms. */
const offsetAt = (ms: number, tz: string) => wallOf(ms, tz) - Math.floor(ms / 1000) * 1000;

/** Instant of a wall-clock time in `tz` ("compatible": gap → shifted forward, overlap → earlier). */
export function wallToInstant(wall: number, tz: string): number {
  const before = offsetAt(wall - 86_400_000, tz);
  const after = offsetAt(wall + 86_400_000, tz);
  const valid = [wall - before, wall - after].filter((t) => wallOf(t, tz) === wall);
  if (valid.length) return Math.min(...valid);
  return wall - before; // in a gap: keep the pre-transition offset, i.e. move forward by the gap
}

/** `YYYY-MM-DD HH:MM` of `ms` in `tz`. */
export function localWallTime(ms: number, tz: string): string {
  return new Date(wallOf(ms, tz)).toISOString().slice(0, 16).replace('T', ' ');
}
