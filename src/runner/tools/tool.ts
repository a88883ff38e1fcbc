/**
 * The tool seam: one definition per tool, registered through src/runner/tools/index.ts.
 * Tools run in the MCP tool server inside the sandbox. They act only by writing outbound rows
 * (the sandbox's side of the session) and reading what the host published in inbound.db; the
 * host re-checks everything they write. A ToolError is worded for the model: it says what was
 * wrong with the call and how to fix it, and nothing is written when one is thrown.
 */
import type { z } from 'zod';
import {
  sameChat,
  type Answer,
  type Routing,
  type SessionMeta,
  type TaskListing,
} from '../../shared/messages.js';
import type { OutMessage } from '../session-io.js';

export class ToolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ToolError';
  }
}

/** The inbound message whose turn is running: tool rows reply to it and default to its chat. */
export interface TurnRef {
  messageId: string;
  routing: Routing;
}

export interface Destination {
  name: string;
  kind: string;
  routing: Routing;
}

export interface ToolContext {
  meta(): SessionMeta;
  turn(): TurnRef | null;
  destinations(): Destination[];
  /** Write rows; returns their seqs. */
  write(rows: OutMessage[]): number[];
  /** Outbound row by seq (the agent's own messages), or null. */
  sentBySeq(seq: number): { kind: string; routing: Routing } | null;
  /** Inbound row by seq (messages the agent received), or null. */
  receivedBySeq(seq: number): { kind: string; routing: Routing } | null;
  /**
   * The answer (or why the question could not be shown), or null at the deadline or once
   * `signal` aborts (the agent cancelled the call: nothing waits, nor keeps the heartbeat, for it).
   */
  waitForAnswer(questionId: string, expiresAt: number, signal?: AbortSignal): Promise<Answer | null>;
  /**
   * The group's tasks: those the host mirrored into inbound.db, then those this session asked
   * for that the host has neither stored nor refused yet (status 'requested').
   */
  tasks(): TaskListing[];
  agentDir: string;
  sessionDir: string;
  now(): number;
  newId(): string;
}

export interface ToolDefinition<S extends z.ZodRawShape = z.ZodRawShape> {
  name: string;
  /** What the model reads to decide when and how to call the tool. */
  description: string;
  /** Zod shape of the arguments; the MCP server validates calls against it. */
  input: S;
  /** Optional guidance composed into the agent's instructions (CLAUDE.md / AGENTS.md). */
  instructions?: string;
  /** `signal` aborts when the client cancels the call (MCP notifications/cancelled). */
  run(args: z.infer<z.ZodObject<S>>, ctx: ToolContext, signal?: AbortSignal): Promise<string> | string;
}

export function defineTool<S extends z.ZodRawShape>(def: ToolDefinition<S>): ToolDefinition<S> {
  return def;
}

/** Resolve `to` (a destination name) or the turn's own chat. */
export function resolveTarget(
  ctx: ToolContext,
  to: string | undefined,
): { routing: Routing; origin: boolean } {
  if (to === undefined || to.trim() === '' || to === 'origin') {
    const turn = ctx.turn();
    if (turn) return { routing: turn.routing, origin: true };
    const fallback = ctx.meta().defaultRouting;
    if (!fallback)
      throw new ToolError(
        'There is no current chat to answer; pass `to` with one of the names from list_destinations.',
      );
    return { routing: fallback, origin: true };
  }
  const d = ctx.destinations().find((x) => x.name === to);
  if (!d) {
    const known = ['origin', ...ctx.destinations().map((x) => x.name)];
    throw new ToolError(`Unknown destination "${to}". Use one of: ${known.join(', ')}.`);
  }
  const turn = ctx.turn();
  const origin = !!turn && sameChat(turn.routing, d.routing);
  return { routing: d.routing, origin };
}

export { sameChat } from '../../shared/messages.js';
