/** Session metadata for tests that drive queues directly (the host publishes it in real runs). */
import type { SessionQueue } from '../../src/host/session-queue.js';
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

/** The first question the session asked (an outbound 'question' row), if any. */
export const askedQuestion = (host: SessionQueue) => host.outboundSince(0).find((r) => r.kind === 'question');

/** A person's answer to a question, as the host queues it for the session. */
export const answerQuestion = (host: SessionQueue, routing: Routing, questionId: string, text: string) =>
  host.enqueue({
    kind: 'answer',
    trigger: false,
    routing,
    content: { text, sender: { id: 'ann' }, attachments: [], answer: { questionId, text } },
  });
