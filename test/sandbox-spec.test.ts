/** What every sandbox start is given: mounts, a minimal env, the group's MCP servers, no secrets. */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/host/config.js';
import { openCentralDb } from '../src/host/db/open.js';
import { buildSpec } from '../src/host/sandbox-spec.js';
import { createGroup } from '../src/host/store/groups.js';
import { runtimeRegistry } from '../src/sandbox/index.js';
import { createLogger } from '../src/shared/log.js';
import { mcpServersFromEnv } from '../src/shared/mcp.js';
import { tempHome } from './support/cli.js';

let home: string;
afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

describe('sandbox spec', () => {
  it('hands the group MCP servers to the runner, and nothing of the host environment', () => {
    home = tempHome();
    const db = openCentralDb(path.join(home, 'polyclaw.db'));
    const group = createGroup(db, 'g', {
      provider: 'mock',
      mcpServers: [
        { name: 'files', command: 'mcp-files', args: ['--root', '/workspace/agent'] },
        { name: 'web', url: 'https://mcp.example.test/sse' },
      ],
    });
    db.close();
    const runtime = runtimeRegistry.get('bwrap')({
      log: createLogger({ level: 'error' }),
      runDir: path.join(home, 'run'),
    });
    process.env.POLYCLAW_TEST_SECRET_SHOULD_NOT_LEAK = 'sk-leak';
    try {
      const spec = buildSpec({
        config: loadConfig({ POLYCLAW_HOME: home }),
        runtime,
        installId: 'x',
        group,
        sessionId: 's',
      });
      expect(mcpServersFromEnv(spec.env)).toEqual([
        { name: 'files', command: 'mcp-files', args: ['--root', '/workspace/agent'] },
        { name: 'web', args: [], url: 'https://mcp.example.test/sse' },
      ]);
      expect(JSON.stringify(spec)).not.toContain('sk-leak');
      expect(Object.keys(spec.env).sort()).toEqual([
        'HOME',
        'LANG',
        'PATH',
        'POLYCLAW_AGENT_DIR',
        'POLYCLAW_MCP_SERVERS',
        'POLYCLAW_SESSION_DIR',
        'TZ',
      ]);
    } finally {
      delete process.env.POLYCLAW_TEST_SECRET_SHOULD_NOT_LEAK;
    }
  });
});
