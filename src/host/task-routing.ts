/**
 * Where a task's runs answer: the chat of the session it belongs to, or, for a session with no
 * chat of its own (agent-shared), the chat it was scheduled from. One rule for firing and for
 * resuming, so a task is never resumed into a chat it could not run in.
 */
import type { Routing } from '../shared/messages.js';
import type { Db } from './db/open.js';
import { getMessagingGroup } from './store/messaging.js';
import { getSession } from './store/sessions.js';
import type { Task } from './store/tasks.js';

export function taskAnswerRouting(db: Db, t: Task): Routing | null {
  const s = getSession(db, t.sessionId);
  const mg = s.messagingGroupId ? getMessagingGroup(db, s.messagingGroupId) : null;
  if (mg) return { channelType: mg.channelType, platformId: mg.platformId, threadId: s.threadId };
  return t.routing;
}
