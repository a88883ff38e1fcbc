/**
 * `mock` provider: deterministic and scriptable, for tests of every layer above it. By default
 * it echoes the messages it is given ("echo: <text>"). A fenced ```mock JSON block in a message
 * scripts the turn: delay, stream deltas, report progress, fail with a classification (for the
 * first N attempts only, if asked), invalidate its session, or crash the runner process.
 * Sessions are real enough to test resume: turns are counted per session id in the agent dir.
 * Reply templates may use {{turn}} (turns in this session), {{session}}, {{resumed}},
 * {{attempt}} (tries of this message), {{prompt}} (prompts answered by this open query),
 * {{tool}} (the text of the last tool result when the directive calls tools), {{model}} and
 * {{approval}} (the outcome of an `approve` directive under the group's approval policy).
 */
import { PromptInbox } from './prompt-inbox.js';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type {
  AgentProvider,
  AgentQuery,
  ProviderContext,
  ProviderEvent,
  QueryInput,
} from '../../shared/provider.js';
import { unescapeXml } from '../formatter.js';
import { toolServer } from '../tools/config.js';
import type { McpToolsClient } from './mcp-tools-client.js';
import { registerProvider } from './registry.js';
import { writeFileAtomic } from '../../shared/atomic-file.js';

export const MockDirective = z
  .object({
    reply: z.string().optional(),
    delayMs: z.number().int().min(0).max(600_000).optional(),
    deltas: z.array(z.string()).optional(),
    progress: z.array(z.string()).optional(),
    fail: z
      .object({
        message: z.string().default('mock failure'),
        retryable: z.boolean().default(false),
        classification: z.enum(['auth', 'quota', 'sandbox', 'stale-session', 'crash', 'timeout']).optional(),
        /** Fail only while this message has been attempted fewer than N times. */
        attempts: z.number().int().min(1).optional(),
      })
      .optional(),
    /** Throw while attempts < N (the runner sees a thrown provider error). */
    throwAttempts: z.number().int().min(1).optional(),
    invalidateSession: z.boolean().optional(),
    /** Call tools of the Polyclaw MCP tool server, in order; {{tool}} in `reply` is the last result. */
    tools: z
      .array(z.object({ name: z.string(), args: z.record(z.string(), z.unknown()).default({}) }))
      .optional(),
    exit: z.number().int().min(0).max(255).optional(),
    /** Want a tool that needs approval; {{approval}} in `reply` is 'allowed' or 'denied: <reason>'. */
    approve: z.object({ tool: z.string().min(1), summary: z.string().default('') }).optional(),
  })
  .strict();
export type MockDirective = z.infer<typeof MockDirective>;

export class MockSessionInvalid extends Error {
  constructor(id: string) {
    super(`mock session ${id} is no longer valid`);
    this.name = 'MockSessionInvalid';
  }
}

const DIRECTIVE = /```mock\s*\n([\s\S]*?)```/g;

export function parsePrompt(prompt: string): {
  texts: string[];
  seqs: number[];
  directive: MockDirective | null;
  error: string | null;
} {
  const texts: string[] = [];
  const seqs: number[] = [];
  let directive: MockDirective | null = null;
  let error: string | null = null;
  for (const m of prompt.matchAll(/<message ([^>]*)>([\s\S]*?)<\/message>/g)) {
    const seq = /seq="(\d+)"/.exec(m[1]!)?.[1];
    if (seq) seqs.push(Number(seq));
    const body = unescapeXml(m[2]!.replace(/\n<attachment [^>]*\/>/g, ''));
    for (const d of body.matchAll(DIRECTIVE)) {
      try {
        const r = MockDirective.safeParse(JSON.parse(d[1]!));
        if (r.success) directive = { ...(directive ?? {}), ...r.data };
        else
          error = `invalid mock directive: ${r.error.issues[0]?.path.join('.')} ${r.error.issues[0]?.message}`;
      } catch (err) {
        error = `invalid mock directive JSON: ${(err as Error).message}`;
      }
    }
    const text = body.replace(DIRECTIVE, '').trim();
    if (text) texts.push(text);
  }
  return { texts, seqs, directive, error };
}

interface MockState {
  sessions: Record<string, { turns: number; valid: boolean }>;
  attempts: Record<string, number>;
}

class MockStore {
  constructor(private readonly file: string) {}
  read(): MockState {
    try {
      return JSON.parse(fs.readFileSync(this.file, 'utf8')) as MockState;
    } catch {
      return { sessions: {}, attempts: {} };
    }
  }
  write(s: MockState): void {
    writeFileAtomic(this.file, JSON.stringify(s));
  }
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    });
  });

export class MockProvider implements AgentProvider {
  readonly name = 'mock';
  readonly capabilities = {
    nativeSlashCommands: false,
    steering: false,
    memoryScaffold: false,
    streaming: true,
  };
  private store: MockStore;

  constructor(private readonly ctx: Pick<ProviderContext, 'agentDir' | 'sessionDir' | 'model' | 'approval'>) {
    this.store = new MockStore(path.join(ctx.agentDir, '.mock-state.json'));
  }

  isSessionInvalid(err: unknown): boolean {
    return err instanceof MockSessionInvalid;
  }

  query(input: QueryInput): AgentQuery {
    const inbox = new PromptInbox(input.prompt);
    const abort = inbox.abort;
    const store = this.store;
    const ctx = this.ctx;
    const decisions = new Map<string, (d: { allow: boolean; reason?: string }) => void>();
    let tools: McpToolsClient | null = null;
    const server = toolServer({ sessionDir: this.ctx.sessionDir, agentDir: this.ctx.agentDir });
    // Loaded on first use: the MCP SDK costs ~0.3 s to import, which no plain turn should pay.
    const toolClient = async () =>
      (tools ??= new (await import('./mcp-tools-client.js')).McpToolsClient(server));

    async function* run(): AsyncGenerator<ProviderEvent> {
      const state = store.read();
      let id = input.continuation;
      if (id) {
        const s = state.sessions[id];
        if (!s || !s.valid) throw new MockSessionInvalid(id);
      } else {
        id = `mock-${randomUUID()}`;
        state.sessions[id] = { turns: 0, valid: true };
        store.write(state);
      }
      yield { type: 'init', continuation: id };
      try {
        for (let prompt = await inbox.next(); prompt !== null; prompt = await inbox.next()) {
          yield* turn(id, prompt);
        }
      } finally {
        await tools?.close();
      }
    }

    let promptNo = 0;
    async function* turn(id: string, prompt: string): AsyncGenerator<ProviderEvent> {
      promptNo += 1;
      const { texts, seqs, directive: d, error } = parsePrompt(prompt);
      yield { type: 'activity' };
      if (error) {
        yield { type: 'result', text: `mock: ${error}` };
        return;
      }
      const state = store.read();
      const key = seqs.join(',');
      const attempt = (state.attempts[key] ?? 0) + 1;
      state.attempts[key] = attempt;
      store.write(state);
      if (d?.delayMs) await sleep(d.delayMs, abort.signal);
      if (abort.signal.aborted) return;
      if (d?.exit !== undefined) process.exit(d.exit);
      if (d?.throwAttempts && attempt < d.throwAttempts)
        throw new Error(`mock: thrown on attempt ${attempt}`);
      if (d?.fail && (d.fail.attempts === undefined || attempt < d.fail.attempts)) {
        yield {
          type: 'error',
          message: d.fail.message,
          retryable: d.fail.retryable,
          classification: d.fail.classification,
        };
        return;
      }
      for (const p of d?.progress ?? []) yield { type: 'progress', message: p };
      let toolText = '';
      for (const call of d?.tools ?? []) {
        yield { type: 'progress', message: `tool: ${call.name}` };
        const r = await (await toolClient()).call(call.name, call.args);
        toolText = r.isError ? `tool error: ${r.text}` : r.text;
        yield { type: 'activity' };
      }
      let approval = '';
      if (d?.approve) {
        const policy = ctx.approval ?? 'bypass';
        if (policy === 'bypass') approval = 'allowed';
        else if (policy === 'deny') approval = 'denied: the approval policy refuses it';
        else {
          const aid = randomUUID();
          const decided = new Promise<{ allow: boolean; reason?: string }>((r) => decisions.set(aid, r));
          yield { type: 'approval', request: { id: aid, tool: d.approve.tool, summary: d.approve.summary } };
          const aborted = new Promise<null>((r) => abort.signal.addEventListener('abort', () => r(null)));
          const dec = await Promise.race([decided, aborted]);
          if (!dec) return;
          approval = dec.allow ? 'allowed' : `denied: ${dec.reason ?? ''}`;
        }
      }
      for (const delta of d?.deltas ?? []) {
        yield { type: 'delta', text: delta };
      }
      const s = store.read();
      const sess = (s.sessions[id] ??= { turns: 0, valid: true });
      sess.turns += 1;
      if (d?.invalidateSession) sess.valid = false;
      store.write(s);
      const template = d?.reply ?? (d?.deltas ? d.deltas.join('') : `echo: ${texts.join('\n')}`);
      const text = template
        .replaceAll('{{turn}}', String(sess.turns))
        .replaceAll('{{session}}', id)
        .replaceAll('{{resumed}}', String(input.continuation === id))
        .replaceAll('{{attempt}}', String(attempt))
        .replaceAll('{{prompt}}', String(promptNo))
        .replaceAll('{{tool}}', toolText)
        .replaceAll('{{model}}', ctx.model ?? '')
        .replaceAll('{{approval}}', approval);
      yield { type: 'result', text };
    }

    return {
      push: (text: string) => inbox.push(text),
      end: () => inbox.end(),
      abort: () => inbox.stop(),
      answerApproval: (id: string, allow: boolean, reason?: string) => {
        decisions.get(id)?.({ allow, reason });
        decisions.delete(id);
      },
      events: run(),
    };
  }
}

registerProvider('mock', (ctx) => new MockProvider(ctx));
