/** Session metadata for tests that drive queues directly (the host publishes it in real runs). */
import type { Routing, SessionMeta } from '../../src/shared/messages.js';

export const TERMINAL: Routing = { channelType: 'terminal', platformId: 'main', threadId: null };

export function sessionMeta(over: Partial<SessionMeta> = {}): SessionMeta {
  return {
    sessionId: 's',
    agentGroup: 'g',
    provider: 'mock',
    model: null,
    effort: null,
    endpoint: null,
    approval: 'bypass',
    assistantName: 'Assistant',
    timezone: 'UTC',
    defaultRouting: null,
    ...over,
  };
}

/** A chat message carrying a ```mock directive for the mock provider. */
export const mock = (directive: object, text = 'go') =>
  `${text}\n\`\`\`mock\n${JSON.stringify(directive)}\n\`\`\``;
