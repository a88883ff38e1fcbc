/** `polyclaw doctor`: checks the install and says what to fix, one line per check. */
import fs from 'node:fs';
import { loadConfig, paths } from '../../host/config.js';
import { runtimeRegistry } from '../../sandbox/index.js';
import { createLogger } from '../../shared/log.js';
import { connectAdmin } from '../admin-client.js';
import { checkShape, parse } from '../args.js';
import { agentChecks, type DoctorCheck as Check } from './doctor-agents.js';

export async function doctorCommand(argv: string[]): Promise<number> {
  const parsed = parse(argv, {}, 'polyclaw doctor [--json]');
  checkShape('doctor', parsed, [0, []], 'polyclaw doctor [--json]');
  const v = parsed.values;
  const checks: Check[] = [];
  const major = Number(process.versions.node.split('.')[0]);
  checks.push({ name: 'node', ok: major >= 20, detail: process.version, fix: 'install Node.js 20 or newer' });
  let home = '';
  try {
    const config = loadConfig();
    home = config.home;
    checks.push({
      name: 'config',
      ok: true,
      detail: `POLYCLAW_HOME=${config.home}, sandbox=${config.sandbox.runtime}`,
    });
    const p = paths(config.home);
    let writable = false;
    try {
      fs.mkdirSync(config.home, { recursive: true, mode: 0o700 }); // private, as the host makes it
      fs.accessSync(config.home, fs.constants.W_OK);
      writable = true;
    } catch {
      writable = false;
    }
    checks.push({
      name: 'data dir',
      ok: writable,
      detail: config.home,
      fix: `make ${config.home} writable or set POLYCLAW_HOME`,
    });
    const log = createLogger({ level: 'error' });
    for (const name of runtimeRegistry.names()) {
      const r = await runtimeRegistry.get(name)({ log, runDir: p.run }).available();
      const chosen =
        config.sandbox.runtime === name || (config.sandbox.runtime === 'auto' && name === 'bwrap');
      checks.push({
        name: `sandbox ${name}`,
        ok: r.ok || !chosen,
        detail: r.ok ? `available ${r.version ?? ''}`.trim() + (chosen ? ' (in use)' : '') : r.reason,
        fix:
          name === 'bwrap'
            ? 'apt-get install bubblewrap, or set POLYCLAW_SANDBOX=process for development'
            : undefined,
      });
    }
    try {
      const Database = (await import('better-sqlite3')).default;
      const db = new Database(':memory:');
      const ver = (db.prepare('select sqlite_version() v').get() as { v: string }).v;
      db.close();
      checks.push({ name: 'sqlite', ok: true, detail: `better-sqlite3 with SQLite ${ver}` });
    } catch (err) {
      checks.push({
        name: 'sqlite',
        ok: false,
        detail: (err as Error).message.split('\n')[0]!,
        fix: 'run npm ci (better-sqlite3 must build for this Node version)',
      });
    }
    checks.push(...(await agentChecks(p.db)));
    const client = await connectAdmin(p.socket);
    checks.push({
      name: 'host',
      ok: true,
      detail: client ? 'running' : 'not running (start with polyclaw up)',
    });
    client?.close();
  } catch (err) {
    checks.push({
      name: 'config',
      ok: false,
      detail: (err as Error).message,
      fix: 'fix the configuration named above',
    });
  }
  const ok = checks.every((c) => c.ok);
  const failed = checks.filter((c) => !c.ok);
  const error = failed.length
    ? {
        code: 'unavailable',
        message: `${failed.length} check${failed.length === 1 ? '' : 's'} failed: ${failed.map((c) => c.name).join(', ')}`,
      }
    : undefined;
  if (v.json)
    process.stdout.write(
      JSON.stringify({ ok, ...(error ? { error } : {}), result: { home, checks } }) + '\n',
    );
  else
    for (const c of checks)
      process.stdout.write(
        `${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}${!c.ok && c.fix ? ` — ${c.fix}` : ''}\n`,
      );
  return ok ? 0 : 1;
}
