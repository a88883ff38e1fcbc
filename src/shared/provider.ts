/**
 * The provider seam (ARCHITECTURE §3). A provider turns prompts into ProviderEvents by driving
 * one real agent (or the scripted mock). The runner owns queues, acks and replies; a provider
 * owns only its agent process and its continuation token.
 */

import type { ApprovalPolicy } from './messages.js';

export interface ProviderCapabilities {
  /** The agent understands its own slash commands (/compact, /cost); the runner passes them through. */
  nativeSlashCommands: boolean;
  /** push() while a turn runs reaches that turn; otherwise follow-ups wait for the next turn. */
  steering: boolean;
  /** The runner scaffolds memory files (memory/index.md …) in the group folder for this provider. */
  memoryScaffold: boolean;
  /** The provider emits `delta` events as text streams in. */
  streaming: boolean;
}

export interface QueryInput {
  /** Formatted prompt for the first batch of messages. */
  prompt: string;
  /** Continuation stored from a previous `init` event of this provider, if any. */
  continuation?: string;
  /** Working directory of the agent (the group folder inside the sandbox). */
  cwd: string;
  /** Runtime instructions: assistant name, timezone, destinations, rules. */
  systemContext: string;
}

export interface ApprovalRequest {
  id: string;
  tool: string;
  summary: string;
}

export type ErrorClassification = 'auth' | 'quota' | 'sandbox' | 'stale-session' | 'crash' | 'timeout';

/**
 * Thrown by a provider that cannot run with this install or configuration (a missing agent
 * binary, a setting the agent refuses), from its constructor or its query: another attempt
 * cannot help, so the runner acks the due messages failed, not retryable, with the ack
 * classification 'config' (an ack's, not a ProviderEvent's), and the user hears the reason at
 * once instead of after every retry.
 */
export class ProviderConfigError extends Error {
  override name = 'ProviderConfigError';
}

export type ProviderEvent =
  | { type: 'init'; continuation: string }
  | { type: 'activity' }
  | { type: 'progress'; message: string }
  | { type: 'delta'; text: string }
  /**
   * A file the agent produced in the current turn (e.g. a generated image), at a path the runner
   * can read: copied into outbox/ and sent with the turn's reply — alone when the reply's text is
   * said elsewhere (a tool message); one that cannot be copied is named in the reply instead.
   * Dropped, its copy removed, when the turn ends in an `error` or the query throws or ends
   * without a result (another try makes it again).
   */
  | { type: 'file'; path: string }
  | { type: 'approval'; request: ApprovalRequest }
  /**
   * Optional, before the turn's `result`: the model's final message of the turn has ended and
   * this is its text. The runner delivers it at once instead of waiting for the agent's end-of-
   * turn bookkeeping; the `result` that follows settles the turn and is not delivered again
   * when its text is the same (a different final text, e.g. after a hook made the agent go on,
   * is delivered too). Never emitted for a subagent's or a compaction's text.
   */
  | { type: 'reply'; text: string }
  /**
   * The prompt's answer. `merged`: this prompt was steered into one turn with later prompts
   * (Codex); that turn's answer, and its files, come with the last one's result (text "").
   */
  | { type: 'result'; text: string | null; merged?: true }
  | { type: 'error'; message: string; retryable: boolean; classification?: ErrorClassification };

export interface AgentQuery {
  /** Add a follow-up prompt to this open query (steered into the running turn or queued for the next). */
  push(text: string): void;
  /** No more input: the event stream ends after the outstanding prompts are answered. */
  end(): void;
  /** Stop now: the event stream ends promptly without further results. */
  abort(): void;
  /** One `result` (or `error`) per prompt pushed, in order; ends after end() or abort(). */
  events: AsyncIterable<ProviderEvent>;
  /**
   * The decision on an `approval` event this query emitted (required of a provider that emits
   * them): allow runs the tool; deny refuses it with `reason`, worded for the model.
   */
  answerApproval?(id: string, allow: boolean, reason?: string): void;
}

export interface Exchange {
  prompt: string;
  result: string | null;
  continuation?: string;
  status: 'completed' | 'failed';
}

export interface AgentProvider {
  readonly name: string;
  readonly capabilities: ProviderCapabilities;
  query(input: QueryInput): AgentQuery;
  /** True when the stored continuation can no longer be resumed: the runner clears it and starts fresh. */
  isSessionInvalid(err: unknown): boolean;
  /** Called once per answered prompt, e.g. to archive a transcript the agent does not keep itself. */
  onExchangeComplete?(exchange: Exchange): void;
  /** The runner is exiting: stop agent processes kept warm across queries (app-server, opencode serve). */
  close?(): Promise<void> | void;
}

/** What a runner knows about its environment when it builds a provider. */
export interface ProviderContext {
  sessionDir: string;
  agentDir: string;
  model?: string;
  effort?: string;
  /** The group's approval policy (default 'bypass'); a provider maps it onto its agent's permission modes. */
  approval?: ApprovalPolicy;
  env: Readonly<Record<string, string | undefined>>;
  /**
   * True while one of our tools waits for a person's answer (ask_user_question, up to 24 h): a
   * provider's own turn or idle timer must not count that time, as the agent is not idling.
   */
  personWaiting?: () => boolean;
}

export type ProviderFactory = (ctx: ProviderContext) => AgentProvider;
