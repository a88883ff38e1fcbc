/**
 * Wire shapes of the session queues (inbound.db / outbound.db JSON columns). Both sides
 * validate with these schemas when reading: a column written by the other side is untrusted.
 */
import { z } from 'zod';

export const RoutingSchema = z.object({
  channelType: z.string().min(1),
  platformId: z.string().min(1),
  threadId: z.string().nullable().default(null),
});
export type Routing = z.infer<typeof RoutingSchema>;

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

export const InboundContentSchema = z.object({
  text: z.string(),
  sender: SenderSchema.optional(),
  attachments: z.array(AttachmentRefSchema).default([]),
  replyTo: z.object({ seq: z.number().int().optional(), text: z.string().optional() }).optional(),
  platformMessageId: z.string().optional(),
});
export type InboundContent = z.infer<typeof InboundContentSchema>;

/** kind of an inbound row: a chat message, a host notice the agent should see, or a task run. */
export const InboundKind = z.enum(['chat', 'system', 'task']);
export type InboundKind = z.infer<typeof InboundKind>;

export const OutboundContentSchema = z.object({
  text: z.string().default(''),
  files: z.array(z.string()).default([]),
  /** For kind=edit|reaction: the seq of the message acted on. */
  targetSeq: z.number().int().optional(),
  emoji: z.string().optional(),
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
export const SessionMetaSchema = z.object({
  sessionId: z.string(),
  agentGroup: z.string(),
  provider: z.string(),
  model: z.string().nullable().default(null),
  effort: z.string().nullable().default(null),
  assistantName: z.string().default('Assistant'),
  timezone: z.string().default('UTC'),
  defaultRouting: RoutingSchema.nullable().default(null),
});
export type SessionMeta = z.infer<typeof SessionMetaSchema>;

/** Host sequence numbers are even, sandbox ones odd: one seq names any message of a session. */
export const nextEven = (max: number | null | undefined) => (max == null ? 2 : max + (max % 2 === 0 ? 2 : 1));
export const nextOdd = (max: number | null | undefined) => (max == null ? 1 : max + (max % 2 === 1 ? 2 : 1));
