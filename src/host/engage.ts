/**
 * Does a wiring engage its agent on this event? Patterns were validated when the wiring was
 * saved; their testers (pattern-guard.ts) are cached by source so the hot path never
 * recompiles nor judges a pattern again.
 */
import type { InboundEvent } from '../channels/adapter.js';
import { patternTester } from './pattern-guard.js';
import type { Wiring } from './store/messaging.js';

const compiled = new Map<string, (text: string) => boolean | null>();

function tester(pattern: string): (text: string) => boolean | null {
  let t = compiled.get(pattern);
  if (!t) {
    t = patternTester(pattern);
    if (compiled.size > 1000) compiled.clear();
    compiled.set(pattern, t);
  }
  return t;
}

export function threadKey(event: Pick<InboundEvent, 'threadId'>): string {
  return event.threadId ?? '';
}

/**
 * `sticky` answers whether an earlier mention in this thread made the wiring sticky;
 * `slow` hears of a pattern that ran out of time (pattern-guard.ts): no match.
 */
export function engages(
  wiring: Wiring,
  event: InboundEvent,
  sticky: () => boolean,
  slow?: (pattern: string) => void,
): boolean {
  switch (wiring.engageMode) {
    case 'pattern': {
      if (wiring.pattern == null) return false;
      const hit = tester(wiring.pattern)(event.text);
      if (hit === null) slow?.(wiring.pattern);
      return hit === true;
    }
    case 'mention':
      return event.isMention;
    case 'mention-sticky':
      return event.isMention || sticky();
  }
}
