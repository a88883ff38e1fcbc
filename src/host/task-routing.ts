/**
 * Where a task's runs answer: the chat of the session it belongs to, or, for a session with no
 * chat of its own (agent-shared), the chat it was scheduled from — and whether the task's group
 * may post there. One rule for firing and for resuming, so a task is never resumed into a chat
 * it could not run in.
 */
import type { Routing } from '../shared/messages.js';
import type { Db } from './db/open.js';
import { getMessagingGroup, mayPostTo } from './store/messaging.js';
import { getSession } from './store/sessions.js';
import type { Task } from './store/tasks.js';

export function taskAnswer(db: Db, t: Task): { routing: Routing | null; allowed: boolean } {
  const s = getSession(db, t.sessionId);
  const mg = s.messagingGroupId ? getMessagingGroup(db, s.messagingGroupId) : null;
  const routing = mg
    ? { channelType: mg.channelType, platformId: mg.platformId, threadId: s.threadId }
    : t.routing;
  // Checked at every run and on resume: a wiring or destination may have gone since scheduling.
  return { routing, allowed: routing !== null && mayPostTo(db, t.agentGroupId, routing) };
}
