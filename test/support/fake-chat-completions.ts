/**
 * A fake OpenAI Chat Completions server on 127.0.0.1 (stream:true SSE with usage), for the
 * OpenCode provider. Any path ending in /chat/completions is served (so it can sit behind the
 * gateway's /endpoints/NAME route or directly behind the runner's tap).
 *
 * By default it answers from the conversation:
 *  - a request with no tools (OpenCode's title generator) → "Fake Title";
 *  - after a tool result → "TOOL RESULT SEEN: <result>";
 *  - a user text holding `RUN: <command>` → a bash tool call; `SEND: <text>` → a call of our
 *    MCP tool send_message (by the name OpenCode gave it in `tools`);
 *  - `SLOW: <ms>` → the answer waits that long before its first token, sending SSE comments
 *    every 200 ms meanwhile; `HANG` → headers, then nothing, ever;
 *  - anything else → "echo: <last line of the user text>" streamed as three deltas.
 * Tests can replace `script` to answer differently.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ChatMessage {
  role: string;
  content?: string | Array<{ type: string; text?: string }> | null;
  tool_call_id?: string;
}
export interface ChatRequest {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: {
    model?: string;
    stream?: boolean;
    messages: ChatMessage[];
    tools?: Array<{ function: { name: string } }>;
  };
}
export interface Reply {
  text?: string[];
  toolCall?: { name: string; args: Record<string, unknown> };
  firstTokenDelayMs?: number;
  hang?: boolean;
  status?: number;
}
export type Script = (req: ChatRequest) => Reply;

export const contentText = (m: ChatMessage | undefined): string =>
  typeof m?.content === 'string' ? m.content : (m?.content ?? []).map((c) => c.text ?? '').join('');

export const defaultScript: Script = (req) => {
  const tools = req.body.tools ?? [];
  if (!tools.length) return { text: ['Fake Title'] };
  const msgs = req.body.messages;
  const last = msgs[msgs.length - 1];
  if (last?.role === 'tool') return { text: ['TOOL RESULT ', `SEEN: ${contentText(last)}`] };
  // Polyclaw wraps chat text in <message …> tags; scripts match on the text inside.
  const user = contentText([...msgs].reverse().find((m) => m.role === 'user')).replace(
    /<\/?message[^>]*>/g,
    '',
  );
  const run = /RUN: (.+)/.exec(user);
  if (run) return { toolCall: { name: 'bash', args: { command: run[1]!.trim(), description: 'run it' } } };
  const send = /SEND: (.+)/.exec(user);
  if (send) {
    const name =
      tools.map((t) => t.function.name).find((n) => /send_message$/.test(n)) ?? 'polyclaw_send_message';
    return { toolCall: { name, args: { text: send[1]!.trim() } } };
  }
  if (/\bHANG\b/.test(user)) return { hang: true };
  const slow = /SLOW: (\d+)/.exec(user);
  const line =
    user
      .replace(/<[^>]+>/g, '')
      .trim()
      .split('\n')
      .pop() ?? '';
  const text = `echo: ${line}`;
  const third = Math.ceil(text.length / 3);
  return {
    text: [text.slice(0, third), text.slice(third, 2 * third), text.slice(2 * third)],
    firstTokenDelayMs: slow ? Number(slow[1]) : undefined,
  };
};

export interface FakeChat {
  url: string;
  port: number;
  requests: ChatRequest[];
  script: Script;
  close(): Promise<void>;
}

const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({
  id: 'chatcmpl-fake',
  object: 'chat.completion.chunk',
  created: Math.floor(Date.now() / 1000),
  model: 'fake-model',
  choices: [{ index: 0, delta, finish_reason: finish }],
});

export async function startFakeChat(): Promise<FakeChat> {
  let calls = 0;
  const fake: FakeChat = {
    url: '',
    port: 0,
    requests: [],
    script: defaultScript,
    close: async () => undefined,
  };
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      if (!/\/chat\/completions$/.test(req.url ?? '')) {
        res.writeHead(404).end('{"error":{"message":"not found"}}');
        return;
      }
      const r: ChatRequest = { path: req.url ?? '', headers: req.headers, body: JSON.parse(raw) };
      fake.requests.push(r);
      void answer(fake.script(r), res);
    });
  });
  const timers = new Set<NodeJS.Timeout>();
  const sleep = (ms: number) => new Promise<void>((r) => timers.add(setTimeout(r, ms)));
  async function answer(reply: Reply, res: http.ServerResponse) {
    if (reply.status) {
      res.writeHead(reply.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: `fake status ${reply.status}` } }));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.flushHeaders();
    if (reply.hang) return;
    const send = (o: unknown) => res.write(`data: ${JSON.stringify(o)}\n\n`);
    if (reply.firstTokenDelayMs) {
      const end = Date.now() + reply.firstTokenDelayMs;
      while (Date.now() < end && !res.destroyed) {
        res.write(': keep-alive\n\n');
        await sleep(Math.min(200, end - Date.now()));
      }
    }
    send(chunk({ role: 'assistant', content: '' }));
    let finish = 'stop';
    if (reply.toolCall) {
      calls += 1;
      const id = `call_fake_${calls}`;
      send(
        chunk({
          tool_calls: [
            { index: 0, id, type: 'function', function: { name: reply.toolCall.name, arguments: '' } },
          ],
        }),
      );
      send(
        chunk({ tool_calls: [{ index: 0, function: { arguments: JSON.stringify(reply.toolCall.args) } }] }),
      );
      finish = 'tool_calls';
    }
    for (const t of reply.text ?? []) send(chunk({ content: t }));
    send(chunk({}, finish));
    send({ ...chunk({}), choices: [], usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } });
    res.end('data: [DONE]\n\n');
  }
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  fake.port = (server.address() as AddressInfo).port;
  fake.url = `http://127.0.0.1:${fake.port}`;
  fake.close = () =>
    new Promise<void>((r) => {
      timers.forEach(clearTimeout);
      server.closeAllConnections();
      server.close(() => r());
    });
  return fake;
}
