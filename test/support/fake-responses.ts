/**
 * A fake OpenAI Responses server on 127.0.0.1 for the real `codex` binary
 * (shared/reference/agent-clis/FINDINGS.md §A). POST .../responses answers with SSE:
 * response.created → output_item.added → output_text.delta × n → output_item.done → response.completed.
 * Each request takes the next scripted step (or, when the script is empty, echoes the last user text):
 *   { text, deltas? }            an assistant message, streamed in the given pieces
 *   { text, deltas?, cut: true } the pieces, then the stream ends without response.completed
 *                                (a connection dropped mid-answer)
 *   { exec: 'cmd' }              an exec_command function call
 *   { mcp: {server, tool, args} } an MCP namespace call (`namespace: "mcp__<server>"`)
 *   { hang: true }               headers + response.created, then nothing until the client leaves
 *   { delayMs, ...step }          wait before answering
 *   { status, error }            an HTTP error
 * Every request body is recorded (tests look for tool outputs and headers).
 */
import http from 'node:http';
import { listenLoopback, onBody } from './http-kit.js';

export type Step =
  | { text: string; deltas?: string[]; delayMs?: number; gapMs?: number; cut?: boolean }
  | { exec: string; delayMs?: number }
  | { mcp: { server: string; tool: string; args: Record<string, unknown> }; delayMs?: number }
  | { hang: true; delayMs?: number }
  | { status: number; error: string; delayMs?: number };

export interface FakeResponses {
  url: string;
  port: number;
  requests: Array<{ url: string; headers: http.IncomingHttpHeaders; body: any }>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** The steps of the next requests, replacing any left over. */
  script(...steps: Step[]): void;
  /** Resolves when the n-th request (1-based) has arrived. */
  waitRequests(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

let seq = 0;
const id = (p: string) => `${p}_${Date.now().toString(36)}${(seq++).toString(36)}`;

/** The text of the last user message in a Responses request body. */
export function lastUserText(body: { input?: unknown[] }): string {
  const items = (body.input ?? []) as Array<{ role?: string; content?: Array<{ text?: string }> }>;
  for (let i = items.length - 1; i >= 0; i--) {
    const it = items[i]!;
    if (it.role === 'user') return (it.content ?? []).map((c) => c.text ?? '').join('');
  }
  return '';
}

export async function startFakeResponses(): Promise<FakeResponses> {
  const steps: Step[] = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const state: FakeResponses = {
    url: '',
    port: 0,
    requests: [],
    // A new script replaces what an earlier (failed or cut short) turn left unconsumed.
    script: (...s) => void steps.splice(0, steps.length, ...s),
    waitRequests: (n, timeoutMs = 20_000) =>
      new Promise<void>((resolve, reject) => {
        if (state.requests.length >= n) return resolve();
        const t = setTimeout(() => reject(new Error(`fake responses: ${n} requests not seen`)), timeoutMs);
        waiters.push({ n, resolve: () => (clearTimeout(t), resolve()) });
      }),
    close: () => listening.close(),
  };
  const server = http.createServer((req, res) => {
    onBody(req, (raw) => {
      let body: { input?: unknown[] } = {};
      try {
        body = raw ? (JSON.parse(raw) as typeof body) : {};
      } catch (err) {
        body = { input: [], ...{ parseError: String(err) } };
      }
      state.requests.push({ url: req.url ?? '', headers: req.headers, body });
      for (const w of waiters.filter((x) => state.requests.length >= x.n)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
      if (req.method !== 'POST' || !(req.url ?? '').split('?')[0]!.endsWith('/responses')) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: `no route ${req.url}` } }));
        return;
      }
      const step = steps.shift() ?? { text: `ok: ${lastUserText(body)}` };
      setTimeout(() => answer(step, res), step.delayMs ?? 0);
    });
  });
  const listening = await listenLoopback(server);
  state.port = listening.port;
  state.url = listening.url;
  return state;
}

function answer(step: Step, res: http.ServerResponse): void {
  if ('status' in step) {
    res.writeHead(step.status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { message: step.error, type: 'fake_error' } }));
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const respId = id('resp');
  const send = (type: string, data: object) =>
    res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
  send('response.created', { response: { id: respId, status: 'in_progress', output: [] } });
  if ('hang' in step) return;
  const finish = (item: object) => {
    send('response.output_item.done', { output_index: 0, item });
    send('response.completed', {
      response: {
        id: respId,
        status: 'completed',
        output: [item],
        usage: {
          input_tokens: 10,
          output_tokens: 5,
          total_tokens: 15,
          input_tokens_details: { cached_tokens: 0 },
          output_tokens_details: { reasoning_tokens: 0 },
        },
      },
    });
    res.end();
  };
  if ('exec' in step || 'mcp' in step) {
    const call_id = id('call');
    const item =
      'exec' in step
        ? {
            type: 'function_call',
            id: id('fc'),
            call_id,
            name: 'exec_command',
            arguments: JSON.stringify({ cmd: step.exec }),
          }
        : {
            type: 'function_call',
            id: id('fc'),
            call_id,
            name: step.mcp.tool,
            namespace: `mcp__${step.mcp.server}`,
            arguments: JSON.stringify(step.mcp.args),
          };
    send('response.output_item.added', { output_index: 0, item: { ...item, arguments: '' } });
    finish(item);
    return;
  }
  const msgId = id('msg');
  const pieces = step.deltas ?? [step.text];
  send('response.output_item.added', {
    output_index: 0,
    item: { type: 'message', id: msgId, role: 'assistant', status: 'in_progress', content: [] },
  });
  let i = 0;
  const next = () => {
    if (i < pieces.length) {
      send('response.output_text.delta', {
        item_id: msgId,
        output_index: 0,
        content_index: 0,
        delta: pieces[i++],
      });
      if (step.gapMs) setTimeout(next, step.gapMs);
      else next();
      return;
    }
    if (step.cut) return void res.end();
    finish({
      type: 'message',
      id: msgId,
      role: 'assistant',
      status: 'completed',
      content: [{ type: 'output_text', text: step.text, annotations: [] }],
    });
  };
  next();
}
