/**
 * One turn answers one chat. A session can take messages from several chats or threads (a
 * shared session sees every thread of its channel; a task reports to its own chat), and a turn
 * has one reply, sent where its last trigger came from. So a batch, and each follow-up pushed
 * into a running query, ends before the first trigger from another chat than its first
 * trigger's; rows that ask for no answer ride along as context wherever they came from. The
 * reply goes to the group's last *trigger*: a context row after it ("lol" in another thread)
 * must not take the answer away from the person who asked.
 */
import { sameChat, type Routing } from '../shared/messages.js';
import type { PendingMessage } from './session-io.js';

/** The leading part of `due` whose triggers all come from one chat (all of it when they do). */
export function oneChat(due: PendingMessage[]): PendingMessage[] {
  const first = due.find((m) => m.trigger);
  if (!first) return due;
  const cut = due.findIndex((m) => m.trigger && !sameChat(m.routing, first.routing));
  return cut < 0 ? due : due.slice(0, cut);
}

/** The chat the group's triggers come from (null when it has none). */
export function chatOf(group: PendingMessage[]): Routing | null {
  return group.find((m) => m.trigger)?.routing ?? null;
}

/** The message a group's reply answers: its last trigger (its last row when it has none). */
export function answered(group: PendingMessage[]): PendingMessage {
  for (let i = group.length - 1; i >= 0; i--) if (group[i]!.trigger) return group[i]!;
  return group[group.length - 1]!;
}
