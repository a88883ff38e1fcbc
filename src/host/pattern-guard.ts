/**
 * Wiring patterns are admin-written regular expressions run on every message of their chat,
 * on the host's one event loop. V8's backtracking engine takes exponential time on some
 * ("(a+)+$" against "aaaa…!"), so a pattern that could backtrack badly is run in a vm context
 * with a time limit, and one that runs out of time counts as no match. Even one unbounded
 * quantifier followed by something that can fail is quadratic: an unanchored search retries
 * it from every position ("x+y" against 100k of "x" takes seconds). A pattern is run directly
 * only when it cannot take super-linear time: no quantified group, no back-reference, no long
 * exact count, and at most one quantifier that leaves a choice — a small one ("?", "{2,3}"), or
 * one that ends the pattern needing at most one character, or any in a pattern anchored at its
 * start (".*", "bot.*", "colou?r", "\d{4}-\d{2}", "^\s+$" run directly; "x+y", "\s+$",
 * ".{0,30}.{0,30}!", ".{200}!", "a.{2000,}" are guarded).
 */
import vm from 'node:vm';

export const PATTERN_TIME_LIMIT_MS = 50;

const context = vm.createContext({ re: null as RegExp | null, text: '' });
const script = new vm.Script('re.test(text)');

/** How many characters a quantifier token may match: [min, max]. */
function range(token: string): [number, number] {
  const t = token.replace(/\?$/, '') || '?'; // "x??" is a lazy "?"
  if (t === '*') return [0, Infinity];
  if (t === '+') return [1, Infinity];
  if (t === '?') return [0, 1];
  const [, lo, comma, hi] = /^\{(\d+)(,?)(\d*)\}$/.exec(t)!;
  return [Number(lo), comma ? (hi ? Number(hi) : Infinity) : Number(lo)];
}

/** Quantifiers with a choice of more than this many repetitions count as costly. */
const SMALL = 10;

/** Could this pattern take super-linear time? Errs towards yes. */
export function mayBacktrack(pattern: string): boolean {
  if (/\\[1-9]|\\k</.test(pattern)) return true;
  const bare = pattern
    .replace(/\\./g, 'x')
    .replace(/\[(?:\\.|[^\]])*\]/g, 'x')
    .replace(/\(\?(?:[:=!]|<[=!]|<[^>]*>)/g, '('); // a group's opener is no quantifier
  if (/\)(?:[*+?]|\{\d)/.test(bare)) return true;
  const anchored = bare.startsWith('^') && !bare.includes('|');
  const tokens = (bare.match(/(?:[*+?]|\{\d+(?:,\d*)?\})\??/g) ?? []).map(range);
  // An exact count leaves no choice, but a long one is scanned again from every position.
  if (!anchored && tokens.some(([lo, hi]) => lo === hi && lo > SMALL)) return true;
  const choices = tokens.filter(([lo, hi]) => lo !== hi);
  // Two that leave a choice, even bounded ones (".{0,30}.{0,30}!", "a?a?aa"), multiply.
  if (choices.length === 0) return false;
  if (choices.length > 1) return true;
  // One: linear when its choice is small, when it ends the pattern needing at most one
  // character (nothing after it can fail), or when the search has one start position.
  const [lo, hi] = choices[0]!;
  if (hi <= SMALL || anchored) return false;
  return !(lo <= 1 && /(?:[*+?]|\{\d+(?:,\d*)?\})\??$/.test(bare));
}

/**
 * A test of `pattern` (case-insensitive, unicode) against a text: true/false, or null when it
 * ran out of time. Compiled, and judged guarded or not, once: callers keep the tester.
 */
export function patternTester(pattern: string, ms = PATTERN_TIME_LIMIT_MS): (text: string) => boolean | null {
  const re = new RegExp(pattern, 'iu');
  if (!mayBacktrack(pattern)) return (text) => re.test(text);
  return (text) => {
    context.re = re;
    context.text = text;
    try {
      return script.runInContext(context, { timeout: ms }) === true;
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') return null;
      throw err;
    } finally {
      context.re = null;
      context.text = '';
    }
  };
}
