/**
 * The CLI's admin client against something on the admin socket that does not speak the
 * protocol: the command fails with one line, never a stack trace.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { connectAdmin } from '../src/cli/admin-client.js';
import { cliAsync, tempHome } from './support/cli.js';

const cleanups: Array<() => Promise<void> | void> = [];
const peerErrors: Error[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A listener on `<home>/admin.sock` that answers every line with `reply`. */
async function impostor(reply: string): Promise<{ home: string; sock: string }> {
  const home = tempHome('polyclaw-admin-client-');
  const sock = path.join(home, 'admin.sock');
  const server = net.createServer((c) => {
    // The client drops the connection after the bad line: a reset here is expected, and kept.
    c.on('error', (err) => peerErrors.push(err));
    c.on('data', () => c.write(reply + '\n'));
  });
  await new Promise<void>((r) => server.listen(sock, r));
  cleanups.push(() => fs.rmSync(home, { recursive: true, force: true }));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return { home, sock };
}

describe('admin client', () => {
  it.each(['<html>not json', 'null', '[1]'])(
    'fails a request on the line %j with one error line',
    async (line) => {
      const { sock } = await impostor(line);
      const client = await connectAdmin(sock);
      expect(client).not.toBeNull();
      await expect(client!.request('groups.list')).rejects.toMatchObject({
        code: 'unavailable',
        message: `the admin socket sent a line that is not a JSON object: ${JSON.stringify(line)}`,
      });
    },
  );

  it('makes a command print one line and exit non-zero', async () => {
    const { home } = await impostor('hello');
    const r = await cliAsync(home, ['groups', 'list']);
    expect([r.code, r.stderr]).toEqual([
      1,
      'polyclaw: the admin socket sent a line that is not a JSON object: "hello"\n',
    ]);
  });
});
