/**
 * Host access to sandbox-writable files (confined.ts and its users): whatever the sandbox
 * planted — symlinks in any component, FIFOs, folders where files were — the host neither
 * follows it out, nor blocks, nor writes through it.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { composeClaudeMd } from '../src/providers/claude-md.js';
import { folderInside, readInside } from '../src/shared/confined.js';
import { bellsDir, INBOUND_BELL, ringBell } from '../src/shared/session-db.js';
import { tempHome } from './support/cli.js';

let dir: string;
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A host folder with a file the sandbox must never reach, and a sandbox folder beside it. */
function setup() {
  dir = tempHome('polyclaw-confined-');
  const host = path.join(dir, 'host');
  const box = path.join(dir, 'box');
  fs.mkdirSync(host);
  fs.mkdirSync(box);
  fs.writeFileSync(path.join(host, 'vault.key'), 'HOST-SECRET');
  return { host, box };
}

describe('confined host access', () => {
  it('readInside reads a plain file and refuses a symlink in any component, a FIFO, a device', async () => {
    const { host, box } = setup();
    fs.mkdirSync(path.join(box, 'outbox', 'm'), { recursive: true });
    fs.writeFileSync(path.join(box, 'outbox', 'm', 'ok.txt'), 'fine');
    expect((await readInside(box, 'outbox', 'outbox/m/ok.txt')).toString()).toBe('fine');
    fs.symlinkSync(host, path.join(box, 'outbox', 'h'));
    fs.symlinkSync('/dev', path.join(box, 'outbox', 'd'));
    execFileSync('mkfifo', [path.join(box, 'outbox', 'm', 'pipe')]);
    for (const rel of ['outbox/h/vault.key', 'outbox/d/zero', 'outbox/m/pipe'])
      await expect(readInside(box, 'outbox', rel)).rejects.toMatchObject({ code: 'file_missing' });
    await expect(readInside(box, 'outbox', 'outbox/../../host/vault.key')).rejects.toMatchObject({
      code: 'path_refused',
    });
  });

  it('folderInside replaces a symlinked folder with a real one and its handle stays on it', () => {
    const { host, box } = setup();
    fs.mkdirSync(path.join(box, 'a'));
    fs.symlinkSync(host, path.join(box, 'a', 'b'));
    const f = folderInside(box, 'a/b');
    try {
      // The sandbox swaps the folder for a symlink again after the check: the handle does not follow.
      fs.renameSync(path.join(box, 'a', 'b'), path.join(box, 'a', 'old'));
      fs.symlinkSync(host, path.join(box, 'a', 'b'));
      fs.writeFileSync(path.join(f.path, 'note.txt'), 'x');
    } finally {
      f.close();
    }
    expect(fs.readdirSync(host)).toEqual(['vault.key']);
    expect(fs.readFileSync(path.join(box, 'a', 'old', 'note.txt'), 'utf8')).toBe('x');
    fs.writeFileSync(path.join(box, 'file'), '');
    expect(() => folderInside(box, 'file/x')).toThrow(/file is not a folder/);
  });

  it('a bell never writes through a symlink, never blocks on a FIFO, and is put back as a plain file', () => {
    const { host, box } = setup();
    const bell = path.join(bellsDir(box), INBOUND_BELL);
    const plain = () => fs.lstatSync(bell).isFile();
    fs.rmSync(bell, { force: true });
    fs.symlinkSync(path.join(host, 'config.json'), bell); // dangling: the host used to create it
    ringBell(box, INBOUND_BELL);
    expect(plain()).toBe(true);
    fs.rmSync(bell);
    fs.symlinkSync(path.join(host, 'vault.key'), bell); // existing: the host used to truncate it
    ringBell(box, INBOUND_BELL);
    expect(plain()).toBe(true);
    fs.rmSync(bell);
    execFileSync('mkfifo', [bell]);
    ringBell(box, INBOUND_BELL);
    expect(plain()).toBe(true);
    fs.rmSync(path.join(box, 'bells'), { recursive: true });
    fs.symlinkSync(host, path.join(box, 'bells'));
    ringBell(box, INBOUND_BELL);
    expect(plain()).toBe(true);
    expect(fs.readdirSync(host)).toEqual(['vault.key']);
    expect(fs.readFileSync(path.join(host, 'vault.key'), 'utf8')).toBe('HOST-SECRET');
  });

  it('composing CLAUDE.md never writes through a name the sandbox planted beside the memory file', () => {
    const { host, box } = setup();
    // The temp names the host used to write through (pid-based, so predictable).
    for (let pid = process.pid - 2; pid <= process.pid + 2; pid++)
      fs.symlinkSync(path.join(host, 'vault.key'), path.join(box, `MEMORY.md.${pid}.tmp`));
    composeClaudeMd({ mdDir: path.join(dir, 'md'), groupDir: box });
    expect(fs.readFileSync(path.join(host, 'vault.key'), 'utf8')).toBe('HOST-SECRET');
    expect(fs.lstatSync(path.join(box, 'MEMORY.md')).isFile()).toBe(true);
  });
});
