/**
 * Wire shapes of the session queues (inbound.db / outbound.db JSON columns). Both sides
 * validate with these schemas when reading: a column written by the other side is untrusted.
 */
import { z } from 'zod';

/** Longest message a person may send through the terminal chat (characters). */
export const MAX_CHAT_TEXT = 100_000;

export const RoutingSchema = z.object({
  channelType: z.string().min(1),
  platformId: z.string().min(1),
  threadId: z.string().nullable().default(null),
});
export type Routing = z.infer<typeof RoutingSchema>;

/** A named place the agent may address besides the chat a message came from. */
export interface Destination {
  name: string;
  kind: string;
  routing: Routing;
}

export function sameChat(a: Routing, b: Routing): boolean {
  return (
    a.channelType === b.channelType &&
    a.platformId === b.platformId &&
    (a.threadId ?? null) === (b.threadId ?? null)
  );
}

export const SenderSchema = z.object({
  id: z.string(),
  name: z.string().optional(),
  isAdmin: z.boolean().optional(),
});
export type Sender = z.infer<typeof SenderSchema>;

export const AttachmentRefSchema = z.object({
  name: z.string(),
  path: z.string(),
  mimeType: z.string().optional(),
  size: z.number().int().nonnegative().optional(),
});

/** The channel of agent chats (one per pair of groups that may talk); only destinations make them. */
export const AGENT_CHANNEL = 'agent';

export const InboundContentSchema = z.object({
  text: z.string(),
  sender: SenderSchema.optional(),
  attachments: z.array(AttachmentRefSchema).default([]),
  replyTo: z.object({ seq: z.number().int().optional(), text: z.string().optional() }).optional(),
  platformMessageId: z.string().optional(),
  /** Agent-to-agent relays behind this message (agent channel loop guard). */
  hops: z.number().int().nonnegative().optional(),
  /**
   * kind=answer: a person's answer to a question (ask_user_question, an approval), or, with
   * `undelivered`, why the question could not be shown to anyone (the host gave up sending it).
   */
  answer: z
    .object({ questionId: z.string(), text: z.string(), undelivered: z.string().optional() })
    .optional(),
  /** kind=system: the host's own key for this notice, so one told again after a crash is found. */
  hostKey: z.string().optional(),
  /** kind=system: the host refused the task action of this outbound row (its seq). */
  refused: z.object({ seq: z.number().int() }).optional(),
  /** kind=task: the series that fired, its scheduled instant (ms) and its pre-script, if any. */
  task: z
    .object({
      id: z.string(),
      runAt: z.number().int().optional(),
      script: z.string().nullable().default(null),
    })
    .optional(),
});
export type InboundContent = z.infer<typeof InboundContentSchema>;
export type Answer = NonNullable<InboundContent['answer']>;

/**
 * kind of an inbound row: a chat message, a host notice the agent should see, a task run, an
 * admin command (/clear from `sessions reset`), or the answer to a question a tool is waiting on.
 */
export const InboundKind = z.enum(['chat', 'system', 'task', 'command', 'answer']);
export type InboundKind = z.infer<typeof InboundKind>;

/**
 * A scheduled task as the sandbox asks for it. The tool creates the id (so it can answer at
 * once) and resolves `at` to an absolute instant; the host validates again before storing.
 */
export const TaskSpecSchema = z.object({
  id: z.string().min(1),
  prompt: z.string().min(1),
  /** One-shot: absolute time, ISO-8601 with offset (the tool resolves local wall-clock times). */
  at: z.string().nullable().default(null),
  /** Recurring: 5-field cron, evaluated in the group's timezone. */
  cron: z.string().nullable().default(null),
  /** Optional pre-script run in the sandbox before the agent (see WAKE_AGENT_FALSE). */
  script: z.string().nullable().default(null),
});
export type TaskSpec = z.infer<typeof TaskSpecSchema>;

/**
 * Fields of a task to change; absent = unchanged, null = cleared. Not TaskSpecSchema.partial():
 * zod applies the spec's `.default(null)`s inside partial(), which would turn "unchanged" into "clear".
 */
export const TaskPatchSchema = z.object({
  prompt: z.string().min(1).optional(),
  at: z.string().nullable().optional(),
  cron: z.string().nullable().optional(),
  script: z.string().nullable().optional(),
});
export type TaskPatch = z.infer<typeof TaskPatchSchema>;

/** A task as the host mirrors it into each session's inbound.db `tasks` table. */
export const MirroredTaskSchema = z.object({
  id: z.string(),
  prompt: z.string(),
  cron: z.string().nullable(),
  at: z.string().nullable(),
  script: z.string().nullable(),
  status: z.enum(['active', 'paused', 'cancelled', 'done']),
  nextRunAt: z.number().int().nullable(),
  timezone: z.string(),
});
export type MirroredTask = z.infer<typeof MirroredTaskSchema>;

/** A task as the tools list it inside the sandbox. */
export interface TaskListing {
  id: string;
  prompt: string;
  cron: string | null;
  at: string | null;
  status: string;
  nextRunAt: number | null;
  /** The zone its cron is read in (the group's when it was scheduled). */
  timezone: string;
}

/** Operations for the host rather than a chat: outbound rows of kind 'system' carry one. */
export const SystemActionSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('schedule_task'), task: TaskSpecSchema }),
  z.object({ type: z.literal('cancel_task'), taskId: z.string() }),
  z.object({ type: z.literal('pause_task'), taskId: z.string() }),
  z.object({ type: z.literal('resume_task'), taskId: z.string() }),
  z.object({ type: z.literal('update_task'), taskId: z.string(), patch: TaskPatchSchema }),
]);
export type SystemAction = z.infer<typeof SystemActionSchema>;

/** The longest ask_user_question waits for a person (its `timeout` in seconds). */
export const MAX_QUESTION_TIMEOUT_S = 24 * 3600;

export const QuestionSchema = z.object({
  /** Unique id the answer refers to. */
  questionId: z.string().min(1),
  title: z.string().optional(),
  question: z.string().min(1),
  options: z.array(z.string().min(1)).min(1).max(10),
  /** Absolute deadline (ms since epoch); after it the tool returns a timeout. */
  expiresAt: z.number().int(),
  /** Only an admin of the group may answer (tool approvals). */
  adminOnly: z.boolean().optional(),
});
export type Question = z.infer<typeof QuestionSchema>;

export const OutboundContentSchema = z.object({
  text: z.string().default(''),
  files: z.array(z.string()).default([]),
  /** For kind=edit|reaction: the seq of the message acted on. */
  targetSeq: z.number().int().optional(),
  emoji: z.string().optional(),
  /** For kind=card: the card to display (channels without cards get `text`). */
  card: z.unknown().optional(),
  /** For kind=question. */
  question: QuestionSchema.optional(),
  /** For kind=system: an operation for the host. */
  action: SystemActionSchema.optional(),
  /**
   * Set by the runner loop on a turn's own answer (its final text or early reply), never by a
   * tool: a retry of the message counts an earlier try's answer as given, but not an earlier
   * try's tool message ("Working on it…"), which must not silence the retry's answer.
   */
  answer: z.literal(true).optional(),
});
export type OutboundContent = z.infer<typeof OutboundContentSchema>;

export const OutboundKind = z.enum(['message', 'edit', 'reaction', 'card', 'question', 'system']);
export type OutboundKind = z.infer<typeof OutboundKind>;

export const AckStatus = z.enum(['processing', 'completed', 'failed']);
export type AckStatus = z.infer<typeof AckStatus>;

export const AckErrorSchema = z.object({
  message: z.string(),
  retryable: z.boolean(),
  classification: z.string().optional(),
});
export type AckError = z.infer<typeof AckErrorSchema>;

/** Session metadata the host publishes in inbound.db for the runner. */
/**
 * What happens when the agent wants a tool it would ask permission for: 'bypass' runs it (the
 * sandbox is the boundary), 'ask' puts it to an admin of the chat (Allow / Deny; no answer in
 * time = deny), 'deny' refuses it.
 */
export const APPROVAL_POLICIES = ['bypass', 'ask', 'deny'] as const;
export const ApprovalPolicySchema = z.enum(APPROVAL_POLICIES);
export type ApprovalPolicy = z.infer<typeof ApprovalPolicySchema>;

export const SessionMetaSchema = z.object({
  sessionId: z.string(),
  agentGroup: z.string(),
  provider: z.string(),
  model: z.string().nullable().default(null),
  effort: z.string().nullable().default(null),
  /** Vault entry whose gateway route the model calls use (`/endpoints/<name>`); null = the provider's standard route. */
  endpoint: z.string().nullable().default(null),
  approval: ApprovalPolicySchema.default('bypass'),
  assistantName: z.string().default('Assistant'),
  timezone: z.string().default('UTC'),
  defaultRouting: RoutingSchema.nullable().default(null),
});
export type SessionMeta = z.infer<typeof SessionMetaSchema>;

/** Host sequence numbers are even, sandbox ones odd: one seq names any message of a session. */
export const nextEven = (max: number | null | undefined) => (max == null ? 2 : max + (max % 2 === 0 ? 2 : 1));
export const nextOdd = (max: number | null | undefined) => (max == null ? 1 : max + (max % 2 === 1 ? 2 : 1));
