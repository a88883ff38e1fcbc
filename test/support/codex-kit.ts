/**
 * What the codex provider tests share: a folder of the test file's own under the repo's
 * .test-tmp (CODEX_HOME must not be under /tmp, FINDINGS §A; test files run in parallel and each
 * removes only what it made), the fake Responses server, and the provider as the runner makes it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { CodexProvider } from '../../src/runner/providers/codex.js';
import { createLogger, type Logger } from '../../src/shared/log.js';
import type { ApprovalPolicy } from '../../src/shared/messages.js';
import type { AgentQuery, ProviderEvent } from '../../src/shared/provider.js';
import { MAIN, ROOT } from './cli.js';
import { startFakeResponses, type FakeResponses } from './fake-responses.js';

export interface CodexKit {
  /** The fake Responses server (up from beforeAll on). */
  readonly fake: FakeResponses;
  /** A new agent folder (agent/ and session/ inside) under this file's folder. */
  mkAgent(name: string): string;
}

/** Registers the file's beforeAll/afterAll: its folder and the fake, made and removed. */
export function codexKit(file: string): CodexKit {
  const tmp = path.join(ROOT, '.test-tmp', file);
  let fake: FakeResponses | null = null;
  beforeAll(async () => {
    fs.mkdirSync(tmp, { recursive: true });
    fake = await startFakeResponses();
  });
  afterAll(async () => {
    await fake?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  return {
    get fake() {
      if (!fake) throw new Error('the fake Responses server starts in beforeAll');
      return fake;
    },
    mkAgent(name) {
      const dir = fs.mkdtempSync(path.join(tmp, `${name}-`));
      fs.mkdirSync(path.join(dir, 'agent'));
      fs.mkdirSync(path.join(dir, 'session'));
      return dir;
    },
  };
}

/** The provider on agent folder `dir`, its model calls to `gatewayUrl`, as the runner makes it. */
export function codexProvider(
  dir: string,
  o: {
    gatewayUrl: string;
    token?: string;
    env?: Record<string, string>;
    approval?: ApprovalPolicy;
    personWaiting?: () => boolean;
    log?: Logger;
  },
): CodexProvider {
  return new CodexProvider(
    {
      personWaiting: o.personWaiting,
      sessionDir: path.join(dir, 'session'),
      agentDir: path.join(dir, 'agent'),
      model: 'fake-model',
      approval: o.approval,
      env: {
        PATH: process.env.PATH,
        HOME: path.join(dir, 'agent'),
        LANG: 'C.UTF-8',
        POLYCLAW_GATEWAY_URL: o.gatewayUrl,
        POLYCLAW_GATEWAY_TOKEN: o.token ?? 'gw-token',
        ...o.env,
      },
    },
    { toolsCli: MAIN, log: o.log ?? createLogger({ level: 'warn' }) },
  );
}

/** Events until `n` results/errors arrived (then end()), or until the stream ends. */
export async function answers(
  q: AgentQuery,
  n = 1,
  onEvent?: (e: ProviderEvent) => void,
): Promise<ProviderEvent[]> {
  const out: ProviderEvent[] = [];
  let seen = 0;
  for await (const e of q.events) {
    out.push(e);
    onEvent?.(e);
    if (e.type === 'result' || e.type === 'error') if (++seen === n) q.end();
  }
  return out;
}
