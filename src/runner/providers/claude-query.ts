/**
 * One live Claude Agent SDK query in streaming-input mode: the first prompt and every push()
 * go into the same CLI process as user messages at priority 'later' (a 'now'/'next' message
 * would be folded into the running turn and share its result).
 * Invariants:
 *  - one result per prompt: the CLI holds at most one unanswered prompt. A push() while one is
 *    in its hands waits here and goes in when that one's result (or error) arrives, because the
 *    CLI also folds 'later' prompts queued behind a running turn into one turn with one result,
 *    and a prompt left without its own result would never be settled;
 *  - end() closes the input once every prompt has its answer; the CLI then exits and the
 *    event stream ends (after at most `exitGraceMs`, when the process is closed); an error the
 *    CLI raises as it exits then ends the stream quietly (every prompt was answered already);
 *  - abort() closes the CLI now; the event stream ends without further results;
 *  - a fatal turn error (API retry, rate limit) closes the query after its `error` event: the
 *    loop fails whatever else was waiting, and the host retries it;
 *  - with `park` (keep warm): once every prompt is answered and end() was called from the
 *    event handler, the CLI is not closed but handed to `park` (LiveCli) for the next batch of
 *    the same session; this query is then released (its end/abort no longer touch the CLI).
 */
import type { Options, Query, SDKMessage, SDKUserMessage } from '@anthropic-ai/claude-agent-sdk';
import type { Logger } from '../../shared/log.js';
import type { AgentQuery, ApprovalRequest, ProviderEvent } from '../../shared/provider.js';
import { ClaudeApprovals } from './claude-approvals.js';
import { ClaudeEventMapper } from './claude-events.js';

/** query() of the SDK; may be async so the SDK is imported only by a query that needs it. */
export type QueryFn = (params: {
  prompt: AsyncIterable<SDKUserMessage>;
  options: Options;
}) => Query | Promise<Query>;

/** A push-fed async iterable of user messages. */
export class InputChannel implements AsyncIterable<SDKUserMessage> {
  private items: SDKUserMessage[] = [];
  private closed = false;
  private wake: (() => void) | null = null;

  push(text: string): void {
    this.items.push({
      type: 'user',
      message: { role: 'user', content: text },
      parent_tool_use_id: null,
      priority: 'later',
    });
    this.poke();
  }
  close(): void {
    this.closed = true;
    this.poke();
  }
  private poke(): void {
    this.wake?.();
    this.wake = null;
  }
  async *[Symbol.asyncIterator](): AsyncGenerator<SDKUserMessage> {
    for (;;) {
      const next = this.items.shift();
      if (next) yield next;
      else if (this.closed) return;
      else await new Promise<void>((r) => (this.wake = r));
    }
  }
}

/**
 * One running Claude Code CLI: the SDK query, its input, its event mapper and the session it
 * is on. Started lazily by the first next(). While parked, watch() keeps one read pending so
 * a CLI that exits is noticed (`dead`) and never reused; so is one that starts a turn of its
 * own (a parked CLI must be silent: its output would be taken for the answer to the next
 * message). The next batch then starts a new CLI, which resumes the session's transcript.
 */
export class LiveCli {
  readonly input = new InputChannel();
  readonly mapper = new ClaudeEventMapper();
  /** Tool approvals of this CLI (the 'ask' policy); unused under the other policies. */
  readonly approvals = new ClaudeApprovals();
  sessionId: string | null = null;
  dead = false;
  private q: Query | null = null;
  private it: AsyncIterator<SDKMessage> | null = null;
  /** The SDK read in flight (kept across an approval handed out meanwhile, and while parked). */
  private pending: Promise<IteratorResult<SDKMessage>> | null = null;
  /** Parked and watching (see watch); a turn's first next() ends it. */
  private watching = false;

  constructor(private readonly start: (input: AsyncIterable<SDKUserMessage>) => Query | Promise<Query>) {}

  /** The next SDK message, or an approval request the CLI is waiting on. */
  async next(): Promise<IteratorResult<CliItem>> {
    this.watching = false; // a turn reads from here on: the watch hands its pending read over
    if (!this.it) {
      this.q = await this.start(this.input);
      this.it = this.q[Symbol.asyncIterator]();
      if (this.dead) this.q.close();
    }
    for (;;) {
      const ask = this.approvals.take();
      if (ask) return { done: false, value: { kind: 'approval', request: ask } };
      const p = (this.pending ??= this.it.next());
      const r = await Promise.race([p, this.approvals.next().then(() => null)]);
      if (r === null) continue;
      this.pending = null;
      if (r.done) return r;
      if ('session_id' in r.value && r.value.session_id) this.sessionId = r.value.session_id;
      return { done: false, value: { kind: 'sdk', message: r.value } };
    }
  }

  watch(): void {
    if (!this.it || this.pending) return;
    this.watching = true;
    const p = this.it.next();
    this.pending = p;
    p.then(
      (r) => {
        if (r.done || TURN_MESSAGES.has(r.value.type)) this.dead = true;
        // A message of no turn (a status) while still parked: dropped, and the watch goes on,
        // or an exit after it would go unseen and the next batch be pushed into a dead CLI.
        else if (this.watching && this.pending === p) {
          this.pending = null;
          this.watch();
        }
      },
      () => {
        this.dead = true;
      },
    );
  }

  close(): void {
    this.dead = true;
    this.approvals.close();
    this.input.close();
    this.q?.close();
  }
}

/** SDK messages that belong to a turn (the model's output, tool results, the turn's result). */
const TURN_MESSAGES = new Set<string>(['assistant', 'user', 'stream_event', 'result']);

export type CliItem = { kind: 'sdk'; message: SDKMessage } | { kind: 'approval'; request: ApprovalRequest };

export function liveQuery(opts: {
  cli: LiveCli;
  prompt: string;
  toClaude: (prompt: string) => string;
  log: Logger;
  exitGraceMs?: number;
  /** Keep the CLI for the next batch instead of closing it once this one is answered. */
  park?: (cli: LiveCli) => void;
}): AgentQuery {
  const { cli } = opts;
  let outstanding = 1;
  let ended = false;
  let aborted = false;
  let parking = false;
  let released = false;
  let atYield = false;
  let broken = false;
  /** Pushed prompts not yet given to the CLI (one in its hands at a time, see above). */
  const held: string[] = [];
  let inCli = 1;
  cli.input.push(opts.toClaude(opts.prompt));
  const grace = opts.exitGraceMs ?? 2000;

  let exitTimer: NodeJS.Timeout | null = null;
  /** All answered and no more input: park the CLI, or close its input (it exits, or is closed after the grace). */
  const finishIfDone = () => {
    if (!ended || outstanding > 0 || exitTimer || parking) return;
    if (opts.park && atYield && cli.sessionId && !broken) {
      parking = true; // run() hands the CLI over as soon as the consumer resumes it
      return;
    }
    cli.input.close();
    exitTimer = setTimeout(() => cli.close(), grace);
  };

  async function* run(): AsyncGenerator<ProviderEvent> {
    try {
      for (;;) {
        const r = await cli.next();
        if (aborted || r.done) return;
        if (r.value.kind === 'approval') {
          yield { type: 'approval', request: r.value.request };
          if (aborted) return;
          continue;
        }
        const { events, fatal } = cli.mapper.map(r.value.message);
        broken ||= fatal; // a CLI whose turn failed fatally is never kept
        for (const ev of events) {
          if (ev.type === 'result' || ev.type === 'error') {
            outstanding = Math.max(0, outstanding - 1);
            inCli = Math.max(0, inCli - 1);
            const next = fatal ? undefined : held.shift();
            if (next !== undefined) {
              inCli += 1;
              cli.input.push(next);
            }
          }
          atYield = true;
          yield ev;
          atYield = false;
          if (aborted || parking) return;
        }
        if (fatal) {
          opts.log.warn('claude turn failed; closing the query', { outstanding });
          return;
        }
        finishIfDone();
      }
    } catch (err) {
      parking = false;
      if (aborted) return;
      // Every prompt has its answer and the input is closed: the CLI's exit error (e.g. after
      // an error result) tells nothing more, and nothing is left to fail.
      if (ended && outstanding === 0) {
        opts.log.debug('claude exited after its last answer', { err });
        return;
      }
      throw err;
    } finally {
      if (exitTimer) clearTimeout(exitTimer);
      if (parking && !aborted && opts.park) {
        released = true;
        cli.watch();
        opts.park(cli);
      } else cli.close();
    }
  }

  return {
    push(text: string) {
      if (ended || aborted || released) return;
      outstanding += 1;
      const prompt = opts.toClaude(text);
      if (inCli > 0) held.push(prompt);
      else {
        inCli += 1;
        cli.input.push(prompt);
      }
    },
    end() {
      if (released) return;
      ended = true;
      finishIfDone();
    },
    answerApproval(id: string, allow: boolean, reason?: string) {
      if (!released) cli.approvals.decide(id, allow, reason);
    },
    abort() {
      if (released) return;
      aborted = true;
      ended = true;
      parking = false;
      cli.close();
    },
    events: run(),
  };
}
