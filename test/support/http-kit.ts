/** Small pieces the fake servers in test/support share. */
import type http from 'node:http';
import type net from 'node:net';

/** Call fn with the whole request body as text once it has arrived. */
export function onBody(req: http.IncomingMessage, fn: (text: string) => void): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => fn(Buffer.concat(chunks).toString('utf8')));
}

/** Drop open connections (keep-alive, hung streams) and close the server. */
export async function closeServer(server: net.Server, sockets: Set<net.Socket>): Promise<void> {
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => server.close(() => r()));
}

/**
 * Listen on 127.0.0.1 (port 0 = any free one), keeping track of connections so close() can drop
 * them (keep-alive, hung streams) instead of waiting for them.
 */
export async function listenLoopback(
  server: net.Server,
  port = 0,
): Promise<{ port: number; url: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  const bound = (server.address() as net.AddressInfo).port;
  return { port: bound, url: `http://127.0.0.1:${bound}`, close: () => closeServer(server, sockets) };
}
