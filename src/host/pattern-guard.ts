/**
 * Wiring patterns are admin-written regular expressions run on every message of their chat,
 * on the host's one event loop. V8's backtracking engine takes exponential time on some
 * ("(a+)+$" against "aaaa…!"), so a pattern that could backtrack badly is run in a vm context
 * with a time limit, and one that runs out of time counts as no match. Even one unbounded
 * quantifier followed by something that can fail is quadratic: an unanchored search retries
 * it from every position ("x+y" against 100k of "x" takes seconds). A pattern is run directly
 * only when it cannot take super-linear time: no quantified group, no back-reference, and at
 * most one quantifier that leaves a choice — a lone "?", or one that ends the pattern or sits in
 * a pattern anchored at its start (".*", "bot.*", "colou?r", "^(hi|hello)", "^\s+$" run
 * directly; "x+y", "\s+$", ".{0,30}.{0,30}!" are guarded).
 */
import vm from 'node:vm';

export const PATTERN_TIME_LIMIT_MS = 50;

const context = vm.createContext({ re: null as RegExp | null, text: '' });
const script = new vm.Script('re.test(text)');

/** Could this pattern take super-linear time? Errs towards yes. */
export function mayBacktrack(pattern: string): boolean {
  if (/\\[1-9]|\\k</.test(pattern)) return true;
  const bare = pattern
    .replace(/\\./g, 'x')
    .replace(/\[(?:\\.|[^\]])*\]/g, 'x')
    .replace(/\(\?(?:[:=!]|<[=!]|<[^>]*>)/g, '('); // a group's opener is no quantifier
  if (/\)(?:[*+?]|\{\d)/.test(bare)) return true;
  // Every quantifier that leaves a choice (a lazy "?" after one is part of it; "{n}" leaves none):
  // two of them, even bounded ones (".{0,30}.{0,30}!", "a?a?aa"), multiply their choices.
  const quantifiers = bare.match(/(?:[*+?]|\{\d+,\d*\})\??/g) ?? [];
  if (quantifiers.length === 0) return false;
  if (quantifiers.length > 1) return true;
  // One: linear when it is a lone "?" (two choices), when nothing after it can fail, or when the
  // search has one start position.
  if (quantifiers[0] === '?') return false;
  const last = /(?:[*+?]|\{\d+,\d*\})\??$/.test(bare);
  const anchored = bare.startsWith('^') && !bare.includes('|');
  return !last && !anchored;
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
