/**
 * JSON-RPC transport to `codex app-server --listen stdio://`: one JSON object per line, no
 * "jsonrpc" field. Invariants:
 *  - every request settles: with its response, its own timeout, or the transport closing;
 *  - a line that is not JSON (or not a known message shape) is logged and skipped, never fatal;
 *  - a server→client request always gets an answer: the handler's result, or an error reply
 *    when the handler throws or no handler is installed (codex must never wait on us);
 *  - when the process exits or errors, every pending request rejects with the real cause and
 *    the close listeners hear it at once, so an in-flight turn ends without waiting for a timeout.
 */
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { z } from 'zod';
import type { Logger } from '../../shared/log.js';

/** The child-process surface the transport needs (a real ChildProcess or a test fake). */
export interface RpcChild {
  stdin: Writable | null;
  stdout: Readable | null;
  on(event: 'exit', fn: (code: number | null, signal: NodeJS.Signals | null) => void): unknown;
  on(event: 'error', fn: (err: Error) => void): unknown;
}

const Id = z.union([z.number(), z.string()]);
const ErrorObj = z.object({ code: z.number().optional(), message: z.string() }).passthrough();
const Incoming = z.union([
  z.object({ id: Id, method: z.string(), params: z.unknown().optional() }),
  z.object({ id: Id, error: ErrorObj }),
  z.object({ id: Id, result: z.unknown() }),
  z.object({ method: z.string(), params: z.unknown().optional() }),
]);

/** An error reply from codex to one of our requests. */
export class RpcError extends Error {
  constructor(
    readonly method: string,
    readonly code: number | undefined,
    message: string,
  ) {
    super(`${method}: ${message}`);
    this.name = 'RpcError';
  }
}

/** The transport is gone (process exited, errored, or was closed); `cause` says why. */
export class RpcClosedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RpcClosedError';
  }
}

export class RpcTimeoutError extends Error {
  constructor(method: string, ms: number) {
    super(`${method}: no answer from codex app-server within ${ms} ms`);
    this.name = 'RpcTimeoutError';
  }
}

export type NotificationHandler = (method: string, params: unknown) => void;
export type RequestHandler = (method: string, params: unknown) => Promise<unknown>;

interface Pending {
  method: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class RpcClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly closeListeners: Array<(err: RpcClosedError) => void> = [];
  private closed: RpcClosedError | null = null;
  onNotification: NotificationHandler = () => undefined;
  onRequest: RequestHandler | null = null;

  constructor(
    private readonly child: RpcChild,
    private readonly log: Logger,
    private readonly defaultTimeoutMs = 30_000,
  ) {
    if (!child.stdout || !child.stdin) throw new Error('codex app-server needs piped stdin and stdout');
    const rl = createInterface({ input: child.stdout, crlfDelay: Infinity });
    rl.on('line', (line) => this.onLine(line));
    child.on('exit', (code, signal) =>
      this.close(`codex app-server exited (${signal ? `signal ${signal}` : `code ${code}`})`),
    );
    child.on('error', (err) => this.close(`codex app-server failed: ${err.message}`));
    child.stdin.on('error', (err) => this.close(`codex app-server stdin failed: ${err.message}`));
  }

  get isClosed(): boolean {
    return this.closed !== null;
  }

  /**
   * Called once, with the cause, when the transport closes (immediately if it already has).
   * Returns an unsubscribe: a connection outlives the queries that listen to it.
   */
  onClose(fn: (err: RpcClosedError) => void): () => void {
    if (this.closed) {
      fn(this.closed);
      return () => undefined;
    }
    this.closeListeners.push(fn);
    return () => {
      const i = this.closeListeners.indexOf(fn);
      if (i >= 0) this.closeListeners.splice(i, 1);
    };
  }

  request<T = unknown>(method: string, params: unknown, timeoutMs = this.defaultTimeoutMs): Promise<T> {
    if (this.closed) return Promise.reject(this.closed);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new RpcTimeoutError(method, timeoutMs));
      }, timeoutMs);
      this.pending.set(id, { method, resolve: resolve as (v: unknown) => void, reject, timer });
      this.write({ id, method, params });
    });
  }

  notify(method: string, params?: unknown): void {
    this.write(params === undefined ? { method } : { method, params });
  }

  /** Mark the transport closed (e.g. before killing the process on purpose). */
  close(reason: string): void {
    if (this.closed) return;
    this.closed = new RpcClosedError(reason);
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(this.closed);
    }
    for (const fn of this.closeListeners.splice(0)) fn(this.closed);
  }

  private write(msg: object): void {
    if (this.closed) return;
    this.child.stdin!.write(JSON.stringify(msg) + '\n');
  }

  private onLine(line: string): void {
    if (!line.trim()) return;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      this.log.warn('skipping unparsable line from codex app-server', { line: line.slice(0, 200) });
      return;
    }
    const r = Incoming.safeParse(raw);
    if (!r.success) {
      this.log.warn('skipping unknown message from codex app-server', { line: line.slice(0, 200) });
      return;
    }
    const m = r.data;
    if ('method' in m && 'id' in m) this.answer(m.id, m.method, m.params);
    else if ('method' in m) this.dispatch(m.method, m.params);
    else this.settle(m);
  }

  private dispatch(method: string, params: unknown): void {
    try {
      this.onNotification(method, params);
    } catch (err) {
      this.log.error('codex notification handler threw', { method, err });
    }
  }

  private answer(id: string | number, method: string, params: unknown): void {
    const handler = this.onRequest;
    // A handler that throws instead of rejecting is refused the same way: codex waits for an
    // answer to every request, and a throw here would end the runner from inside its stdout.
    let reply: Promise<unknown>;
    try {
      reply = handler ? handler(method, params) : Promise.reject(new Error(`no handler for ${method}`));
    } catch (err) {
      reply = Promise.reject(err);
    }
    reply.then(
      (result) => this.write({ id, result: result ?? {} }),
      (err: unknown) => {
        const message = err instanceof Error ? err.message : String(err);
        this.log.warn('refusing codex request', { method, message });
        this.write({ id, error: { code: -32601, message } });
      },
    );
  }

  private settle(m: { id: string | number; result?: unknown; error?: { code?: number; message: string } }) {
    const id = typeof m.id === 'number' ? m.id : Number(m.id);
    const p = this.pending.get(id);
    if (!p) {
      this.log.warn('codex answered an unknown request id', { id: m.id });
      return;
    }
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (m.error) p.reject(new RpcError(p.method, m.error.code, m.error.message));
    else p.resolve(m.result);
  }
}
