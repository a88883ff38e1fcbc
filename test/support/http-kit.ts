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
