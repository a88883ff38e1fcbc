/**
 * Inside the sandbox: a TCP listener on 127.0.0.1 that forwards each connection, byte for
 * byte, to the gateway's unix socket (bind-mounted read-only into the sandbox). The sandbox
 * has no network but its own loopback, so this is its only way out. The forwarder holds no
 * credential and reads nothing: authentication is the caller's gateway token, checked by the
 * gateway. A failed connection to the socket closes only that client connection.
 */
import net from 'node:net';
import type { Logger } from '../shared/log.js';

export interface Forwarder {
  port: number;
  close(): Promise<void>;
}

export function startForwarder(opts: { socketPath: string; port: number; log: Logger }): Promise<Forwarder> {
  const conns = new Set<net.Socket>();
  const server = net.createServer((client) => {
    client.setNoDelay(true);
    const up = net.connect(opts.socketPath);
    conns.add(client);
    conns.add(up);
    const drop = () => {
      client.destroy();
      up.destroy();
      conns.delete(client);
      conns.delete(up);
    };
    client.on('error', drop);
    up.on('error', (err) => {
      opts.log.warn('gateway socket unreachable', { err });
      drop();
    });
    client.on('close', drop);
    up.on('close', drop);
    client.pipe(up);
    up.pipe(client);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, '127.0.0.1', () => {
      server.off('error', reject);
      server.on('error', (err) => opts.log.error('gateway forwarder failed', { err }));
      resolve({
        port: (server.address() as net.AddressInfo).port,
        close: () =>
          new Promise<void>((r) => {
            for (const c of conns) c.destroy();
            server.close(() => r());
          }),
      });
    });
  });
}
