/**
 * Maps app-server notifications to ProviderEvents, and classifies failures. Pure functions:
 * codex-turn.ts decides what a notification means for the turn; this file only says what the
 * user-facing event is. Notification params are validated with
 * zod; a shape we do not know yields only `activity` (codex adds fields and methods often).
 */
import { z } from 'zod';
import type { ErrorClassification, ProviderEvent } from '../../shared/provider.js';

export const Item = z
  .object({
    type: z.string(),
    id: z.string(),
    text: z.string().optional(),
    command: z.string().optional(),
    server: z.string().optional(),
    tool: z.string().optional(),
    status: z.string().optional(),
    savedPath: z.string().optional(),
  })
  .passthrough();
export type Item = z.infer<typeof Item>;

export const ItemNotification = z.object({ item: Item, threadId: z.string(), turnId: z.string() });
export const DeltaNotification = z.object({
  threadId: z.string(),
  turnId: z.string(),
  itemId: z.string(),
  delta: z.string(),
});
export const TurnError = z
  .object({ message: z.string(), codexErrorInfo: z.unknown().optional(), additionalDetails: z.unknown() })
  .partial({ additionalDetails: true })
  .passthrough();
export const TurnNotification = z.object({
  threadId: z.string(),
  turn: z
    .object({ id: z.string(), status: z.string().optional(), error: TurnError.nullable().optional() })
    .passthrough(),
});
export const ErrorNotification = z.object({
  error: TurnError,
  willRetry: z.boolean().default(false),
  threadId: z.string().optional(),
  turnId: z.string().optional(),
});

/** One progress line for a tool item as it starts, or null for items that are not tools. */
export function progressFor(item: Item): string | null {
  switch (item.type) {
    case 'commandExecution':
      return `running: ${(item.command ?? '').slice(0, 120)}`;
    case 'mcpToolCall':
      return `tool: ${item.server ?? '?'}.${item.tool ?? '?'}`;
    case 'fileChange':
      return 'editing files';
    case 'webSearch':
      return 'searching the web';
    case 'imageGeneration':
      return 'generating an image';
    default:
      return null;
  }
}

const infoName = (info: unknown): string =>
  typeof info === 'string' ? info : info && typeof info === 'object' ? (Object.keys(info)[0] ?? '') : '';

/** Classification from codex's error code first, then from the message text. */
export function classify(message: string, codexErrorInfo?: unknown): ErrorClassification | undefined {
  const code = infoName(codexErrorInfo);
  if (code === 'unauthorized') return 'auth';
  if (['usageLimitExceeded', 'rateLimitExceeded', 'sessionBudgetExceeded'].includes(code)) return 'quota';
  if (code === 'sandboxError') return 'sandbox';
  if (/\b(401|403)\b|unauthori[sz]ed|invalid api key|authentication/i.test(message)) return 'auth';
  if (/\b429\b|quota|rate limit|usage limit|insufficient_quota/i.test(message)) return 'quota';
  if (/no rollout found|thread not found|unknown thread|no such thread|thread .* not found/i.test(message))
    return 'stale-session';
  if (/sandbox|bwrap|landlock|seccomp/i.test(message)) return 'sandbox';
  // A dropped model stream or connection (codex tags it only "other"): transient, like a crash.
  if (/stream disconnected|error sending request/i.test(message)) return 'crash';
  if (/timed? ?out|deadline/i.test(message)) return 'timeout';
  return undefined;
}

/** Whether a failed turn is worth retrying by the host (transient upstream trouble). */
export function retryableFor(c: ErrorClassification | undefined, codexErrorInfo?: unknown): boolean {
  const code = infoName(codexErrorInfo);
  if (c === 'auth') return false;
  // The runner clears the stored thread on this error: another try starts a fresh one.
  if (c === 'stale-session') return true;
  if (c === 'quota' || c === 'timeout' || c === 'crash') return true;
  // responseTooManyFailedAttempts: codex gave up after its own attempts; ours come later.
  return /serverOverloaded|internalServerError|httpConnectionFailed|responseStream|responseTooManyFailedAttempts/.test(
    code,
  );
}

export function errorEvent(
  message: string,
  codexErrorInfo?: unknown,
): Extract<ProviderEvent, { type: 'error' }> {
  const classification = classify(message, codexErrorInfo);
  return {
    type: 'error',
    message,
    retryable: retryableFor(classification, codexErrorInfo),
    ...(classification ? { classification } : {}),
  };
}
