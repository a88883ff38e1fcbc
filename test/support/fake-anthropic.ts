/**
 * A fake Anthropic Messages API on 127.0.0.1 for the Claude provider's tests and bench. It
 * speaks the SSE stream the Claude Code binary needs (FINDINGS §C): message_start →
 * content_block_start → content_block_delta × n → content_block_stop → message_delta →
 * message_stop, for text and for tool_use blocks. It records every request with its headers
 * (tests assert which credential arrived) and never echoes a header back.
 *
 * What it answers is scriptable per test (`script`), and by default by directives in the
 * last user message, so a test driving a real host can steer it through chat text alone:
 *   BASH[cmd]      tool_use of Bash with that command; the follow-up request is answered
 *                  "TOOL RESULT SEEN: <tool output>"
 *   SEND[text]     tool_use of our mcp__polyclaw__send_message {text}; then "sent"
 *   AGENT[prompt]  tool_use of Claude Code's Agent tool (a subagent) with that prompt
 *   SLOW[ms]       wait that long before answering (split across the deltas)
 *   FAIL[status]   answer with that HTTP status and an Anthropic error body
 *   otherwise      "echo: <text of the last user message>" in three deltas
 * Only node builtins are imported: bench/claude.mjs transpiles and loads this file as is.
 */
import http from 'node:http';
import { listenLoopback, onBody } from './http-kit.js';

export interface FakeRequest {
  url: string;
  headers: http.IncomingHttpHeaders;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  /** Text of the last user message, with the runner's <message> envelope stripped. */
  lastUserText: string;
  /** tool_result blocks of the last user message (content flattened to text). */
  toolResults: Array<{ id: string; text: string }>;
  at: number;
}

export interface FakeTurn {
  /** Text to stream; an array gives the deltas one by one. */
  text?: string | string[];
  toolUse?: { name: string; input: Record<string, unknown>; id?: string };
  /** HTTP error instead of a stream. */
  status?: number;
  errorType?: string;
  /** Delay before the stream starts. */
  delayMs?: number;
  /** Delay between deltas. */
  gapMs?: number;
}

export type FakeScript = (req: FakeRequest) => FakeTurn | undefined;

export interface FakeAnthropic {
  url: string;
  port: number;
  requests: FakeRequest[];
  /** Per-test override; return undefined to fall back to the directives. */
  script: FakeScript | null;
  /** Requests to /v1/messages only (the model calls). */
  messages(): FakeRequest[];
  /**
   * Longest time (ms) this process's event loop was blocked while the fake was up. The fake
   * lives in the test's own process: a synchronous child (spawnSync of `polyclaw chat`) blocks
   * it, so a request that reached it is only answered once the child gave up (a 39 s "stall").
   */
  maxLoopStallMs(): number;
  close(): Promise<void>;
}

/** Measures event-loop stalls: a 50 ms interval timer that fires late was blocked for the difference. */
function loopStallMeter(): { max: () => number; stop: () => void } {
  const every = 50;
  let last = Date.now();
  let max = 0;
  const timer = setInterval(() => {
    const now = Date.now();
    max = Math.max(max, now - last - every);
    last = now;
  }, every);
  timer.unref();
  return { max: () => max, stop: () => clearInterval(timer) };
}

const ERROR_TYPE: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  429: 'rate_limit_error',
  500: 'api_error',
  529: 'overloaded_error',
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function blocks(content: any): any[] {
  return typeof content === 'string'
    ? [{ type: 'text', text: content }]
    : Array.isArray(content)
      ? content
      : [];
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function flatten(content: any): string {
  return blocks(content)
    .map((b) => (b.type === 'text' ? String(b.text) : ''))
    .join('');
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function describeRequest(url: string, headers: http.IncomingHttpHeaders, body: any): FakeRequest {
  const msgs = Array.isArray(body?.messages) ? body.messages : [];
  // The array can end with {role:"system"} (FINDINGS §C): look for the last *user* message.
  const last = [...msgs].reverse().find((m: { role?: string }) => m.role === 'user');
  const bs = blocks(last?.content);
  const toolResults = bs
    .filter((b) => b.type === 'tool_result')
    .map((b) => ({
      id: String(b.tool_use_id),
      text: typeof b.content === 'string' ? b.content : flatten(b.content),
    }));
  const raw = bs
    .filter((b) => b.type === 'text' && !String(b.text).startsWith('<system-reminder>'))
    .map((b) => String(b.text))
    .join('\n');
  const unescape = (x: string) =>
    x
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&quot;/g, '"')
      .replace(/&amp;/g, '&');
  const inside = [...raw.matchAll(/<message [^>]*>([\s\S]*?)<\/message>/g)].map((m) =>
    unescape(m[1]!.trim()),
  );
  return {
    url,
    headers,
    body,
    lastUserText: inside.length ? inside.join('\n') : raw.trim(),
    toolResults,
    at: Date.now(),
  };
}

/** The default behaviour: directives in the last user message. */
export function directiveTurn(req: FakeRequest): FakeTurn {
  const t = req.lastUserText;
  const slow = /SLOW\[(\d+)\]/.exec(t);
  const pace = slow ? { delayMs: Number(slow[1]) / 2, gapMs: Number(slow[1]) / 6 } : {};
  if (req.toolResults.length) {
    const r = req.toolResults[req.toolResults.length - 1]!;
    return { text: ['TOOL RESULT ', `SEEN: ${r.text.trim()}`] };
  }
  const fail = /FAIL\[(\d+)\]/.exec(t);
  if (fail) return { status: Number(fail[1]) };
  const bash = /BASH\[([^\]]*)\]/.exec(t);
  if (bash) return { ...pace, toolUse: { name: 'Bash', input: { command: bash[1], description: 'run it' } } };
  const agent = /AGENT\[([^\]]*)\]/.exec(t);
  if (agent)
    return {
      toolUse: {
        name: 'Agent',
        input: { description: 'a sub task', prompt: agent[1], subagent_type: 'general-purpose' },
      },
    };
  const send = /SEND\[([^\]]*)\]/.exec(t);
  if (send) return { ...pace, toolUse: { name: 'mcp__polyclaw__send_message', input: { text: send[1] } } };
  const words = `echo: ${t}`;
  const third = Math.ceil(words.length / 3);
  return { ...pace, text: [words.slice(0, third), words.slice(third, 2 * third), words.slice(2 * third)] };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let idSeq = 0;

async function stream(res: http.ServerResponse, model: string, turn: FakeTurn): Promise<void> {
  const id = `msg_fake${++idSeq}`;
  const send = (event: string, data: object) =>
    res.write(`event: ${event}\ndata: ${JSON.stringify({ type: event, ...data })}\n\n`);
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    'request-id': `req_${id}`,
  });
  send('message_start', {
    message: {
      id,
      type: 'message',
      role: 'assistant',
      model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: {
        input_tokens: 10,
        output_tokens: 1,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
      },
    },
  });
  let index = 0;
  const texts = turn.text === undefined ? [] : Array.isArray(turn.text) ? turn.text : [turn.text];
  if (texts.length) {
    send('content_block_start', { index, content_block: { type: 'text', text: '' } });
    for (const [i, t] of texts.entries()) {
      if (i > 0 && turn.gapMs) await sleep(turn.gapMs);
      send('content_block_delta', { index, delta: { type: 'text_delta', text: t } });
    }
    send('content_block_stop', { index });
    index += 1;
  }
  if (turn.toolUse) {
    const tu = turn.toolUse;
    send('content_block_start', {
      index,
      content_block: { type: 'tool_use', id: tu.id ?? `toolu_fake${++idSeq}`, name: tu.name, input: {} },
    });
    send('content_block_delta', {
      index,
      delta: { type: 'input_json_delta', partial_json: JSON.stringify(tu.input) },
    });
    send('content_block_stop', { index });
  }
  send('message_delta', {
    delta: { stop_reason: turn.toolUse ? 'tool_use' : 'end_turn', stop_sequence: null },
    usage: { output_tokens: 5 },
  });
  send('message_stop', {});
  res.end();
}

export async function startFakeAnthropic(opts: { port?: number } = {}): Promise<FakeAnthropic> {
  const server = http.createServer((req, res) => {
    onBody(req, (text) => {
      let body: unknown = null;
      try {
        body = text ? JSON.parse(text) : null;
      } catch (err) {
        body = { unparsable: String(err) };
      }
      const r = describeRequest(req.url ?? '/', req.headers, body);
      state.requests.push(r);
      const pathname = new URL(req.url ?? '/', 'http://x').pathname;
      if (req.method !== 'POST' || !pathname.endsWith('/v1/messages')) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ type: 'error', error: { type: 'not_found_error', message: pathname } }));
        return;
      }
      const turn = state.script?.(r) ?? directiveTurn(r);
      void (async () => {
        if (turn.delayMs) await sleep(turn.delayMs);
        if (turn.status && turn.status >= 400) {
          const b = JSON.stringify({
            type: 'error',
            error: {
              type: turn.errorType ?? ERROR_TYPE[turn.status] ?? 'api_error',
              message: `fake ${turn.status}`,
            },
          });
          res.writeHead(turn.status, { 'content-type': 'application/json', 'retry-after': '0' });
          res.end(b);
          return;
        }
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        await stream(res, String((body as any)?.model ?? 'fake-model'), turn);
      })().catch((err: unknown) => {
        process.stderr.write(`fake-anthropic: ${String(err)}\n`);
        res.destroy();
      });
    });
  });
  const { port, url, close } = await listenLoopback(server, opts.port);
  const meter = loopStallMeter();
  const state: FakeAnthropic = {
    url,
    port,
    requests: [],
    script: null,
    messages: () =>
      state.requests.filter((r) => new URL(r.url, 'http://x').pathname.endsWith('/v1/messages')),
    maxLoopStallMs: () => meter.max(),
    close: async () => {
      meter.stop();
      await close();
    },
  };
  return state;
}
