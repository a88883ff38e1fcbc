/**
 * The vault key and AES-256-GCM sealing. The key lives outside the DB: in a 0600 file
 * `$POLYCLAW_HOME/vault.key` or in an env variable the operator sets. Invariants:
 *  - a key is only ever created when the DB holds no vault yet (never over existing secrets);
 *  - a key that does not open the DB's key check is refused before anything is written;
 *  - a key file readable by group/others is refused rather than silently used.
 * Each sealed value is bound to its row id (AAD), so ciphertexts cannot be swapped between rows.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { PolyclawError } from '../shared/errors.js';

const VERSION = 1;
const IV_LEN = 12;
const TAG_LEN = 16;
const CHECK_TEXT = 'polyclaw-vault-key-check';
const CHECK_AAD = 'vault-meta';

export type VaultKeySource = { kind: 'env'; name: string; value: string } | { kind: 'file'; path: string };

function parseKey(text: string, where: string): Buffer {
  const t = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, 'hex') : Buffer.from(t, 'base64');
  if (key.length !== 32)
    throw new PolyclawError(
      'config',
      `${where}: the vault key must be 32 bytes (64 hex or base64 characters)`,
    );
  return key;
}

export function seal(key: Buffer, plaintext: string, aad: string): Buffer {
  const iv = randomBytes(IV_LEN);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(aad));
  const body = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
  return Buffer.concat([Buffer.from([VERSION]), iv, c.getAuthTag(), body]);
}

/** Throws a PolyclawError('config') when the key or the AAD does not match. */
export function unseal(key: Buffer, sealed: Buffer, aad: string): string {
  if (sealed.length < 1 + IV_LEN + TAG_LEN || sealed[0] !== VERSION)
    throw new PolyclawError('config', 'vault entry is corrupt or from an unknown version');
  const iv = sealed.subarray(1, 1 + IV_LEN);
  const tag = sealed.subarray(1 + IV_LEN, 1 + IV_LEN + TAG_LEN);
  const d = createDecipheriv('aes-256-gcm', key, iv);
  d.setAAD(Buffer.from(aad));
  d.setAuthTag(tag);
  try {
    return Buffer.concat([d.update(sealed.subarray(1 + IV_LEN + TAG_LEN)), d.final()]).toString('utf8');
  } catch {
    throw new PolyclawError('config', 'vault entry cannot be decrypted with this key');
  }
}

export function makeKeyCheck(key: Buffer): Buffer {
  return seal(key, CHECK_TEXT, CHECK_AAD);
}

export function keyMatches(key: Buffer, check: Buffer): boolean {
  try {
    return unseal(key, check, CHECK_AAD) === CHECK_TEXT;
  } catch (err) {
    if (err instanceof PolyclawError) return false;
    throw err;
  }
}

/**
 * Read the key (or create the key file when `mayCreate`: the DB has no vault yet). Never
 * overwrites an existing file.
 */
export function loadVaultKey(source: VaultKeySource, mayCreate: boolean): Buffer {
  if (source.kind === 'env') return parseKey(source.value, source.name);
  let st: fs.Stats | null = null;
  try {
    st = fs.statSync(source.path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (st) {
    if ((st.mode & 0o077) !== 0)
      throw new PolyclawError(
        'config',
        `${source.path} is readable by other users (mode ${(st.mode & 0o777).toString(8)}); run: chmod 600 ${source.path}`,
      );
    return parseKey(fs.readFileSync(source.path, 'utf8'), source.path);
  }
  if (!mayCreate)
    throw new PolyclawError(
      'config',
      `the vault key ${source.path} is missing but this data directory holds secrets; restore the file or set POLYCLAW_VAULT_KEY (refusing to create a new key)`,
    );
  const key = randomBytes(32);
  const fd = fs.openSync(source.path, 'wx', 0o600);
  try {
    fs.writeSync(fd, key.toString('base64') + '\n');
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return key;
}
