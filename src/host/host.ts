/**
 * Host boot and shutdown: lock the data dir, open and migrate the central DB, pick the
 * sandbox runtime, clean up this install's orphaned sandboxes, start channels, recover
 * whatever a previous host left in flight, then open the admin socket. Everything is injected
 * into the pieces here; nothing below reads globals. A start that fails undoes what it had
 * started, newest first, so a failed `polyclaw up` exits instead of hanging on an open listener.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { channelRegistry } from '../channels/index.js';
import type { ChannelAdapter } from '../channels/adapter.js';
import { TerminalChannel } from '../channels/terminal.js';
import { chooseRuntime } from '../sandbox/index.js';
import type { SandboxRuntime } from '../sandbox/runtime.js';
import { badRequest, PolyclawError } from '../shared/errors.js';
import { createLogger, type Logger } from '../shared/log.js';
import { MAX_CHAT_TEXT } from '../shared/messages.js';
import { z } from 'zod';
import { AdminServer, type Connection } from './admin-server.js';
import { HOST_ONLY, runOp, type HostServices, type OpContext } from './admin-ops.js';
import { ensureHome, loadConfig, paths, type Config } from './config.js';
import { openCentralDb, type Db } from './db/open.js';
import { firstRun } from './first-run.js';
import { checkSocketPath, GATEWAY_SOCKET } from '../gateway/gateway.js';
import { startGateway } from './gateway-host.js';
import { installId as readInstallId } from './install-id.js';
import { acquireLock } from './lock.js';
import { Router } from './router.js';
import { Scheduler } from './scheduler.js';
import { SessionManager } from './session-manager.js';
import { sqliteMailbox } from './store/mailbox.js';
import { GROUP_NAME } from './store/groups.js';
import { findMessagingGroup, wiringsForMessagingGroup } from './store/messaging.js';

export interface Host {
  config: Config;
  db: Db;
  runtime: SandboxRuntime;
  sessions: SessionManager;
  router: Router;
  channels: Map<string, ChannelAdapter>;
  createdMain: boolean;
  close(): Promise<void>;
}

export async function startHost(
  opts: {
    env?: NodeJS.ProcessEnv;
    log?: Logger;
    /** Adapters beyond the registered ones (tests, embedders). */ extraChannels?: ChannelAdapter[];
  } = {},
): Promise<Host> {
  const config = loadConfig(opts.env);
  const log = opts.log ?? createLogger().child('host');
  const p = paths(config.home);
  // Before anything is made or opened: the kernel would bind a too-long socket path cut short,
  // somewhere outside the data dir.
  for (const socket of [p.socket, path.join(p.gatewayDir, GATEWAY_SOCKET)])
    checkSocketPath(socket, 'use a shorter POLYCLAW_HOME');
  ensureHome(config.home);
  // The admin and gateway sockets rely on it: only this user may enter the data dir.
  if (fs.statSync(config.home).uid === process.getuid?.()) fs.chmodSync(config.home, 0o700);
  for (const d of [p.groups, p.sessions, p.run]) fs.mkdirSync(d, { recursive: true });
  const release = acquireLock(p.lock);
  const undo: Array<() => unknown> = [release];
  try {
    const db = openCentralDb(p.db);
    undo.push(() => db.close());
    // Before anything else runs: a wrong vault key refuses the start with nothing changed.
    const gateway = (await startGateway({ db, config, log: log.child('gateway'), env: opts.env })).gateway;
    undo.push(() => gateway.close());
    const installId = readInstallId(p.installId);
    const runtime = await chooseRuntime(config.sandbox.runtime, { log, runDir: p.run });
    const orphans = await runtime.cleanupOrphans(installId);
    if (orphans) log.warn('killed sandboxes left over from a previous host', { count: orphans });

    const channels = new Map<string, ChannelAdapter>();
    for (const name of channelRegistry.names()) {
      channels.set(
        name,
        channelRegistry.get(name)({ log: log.child(`channel:${name}`), mailbox: sqliteMailbox(db) }),
      );
    }
    // The scheduler needs the session manager and handles its system actions: bound late.
    let scheduler: Scheduler | null = null;
    for (const ch of opts.extraChannels ?? []) channels.set(ch.channelType, ch);
    const sessions = new SessionManager({
      db,
      config,
      runtime,
      installId,
      channels,
      log,
      onAction: (s, q, row) => scheduler?.handleAction(s, q, row),
      gateway,
    });
    undo.push(() => sessions.close());
    scheduler = new Scheduler({
      db,
      log: log.child('scheduler'),
      sessions,
      defaultTimezone: config.timezone,
    });
    const centralDb = db;
    const gw = gateway;
    const router = new Router({
      db,
      log: log.child('router'),
      queueFor: (s) => sessions.queueFor(s),
      wake: (sid) => sessions.wake(sid),
      tell: (s, key, routing, text, replyTo, hops) =>
        sessions.delivery.notice(s, sessions.queueFor(s), key, { routing, text, replyTo, hops: hops ?? 0 }),
    });
    for (const [name, ch] of channels) {
      await ch.setup({
        onMessage: (ev) => router.route(ev),
        onAnswer: (qid, option, sender) => router.answer(qid, option, sender),
        log: log.child(`channel:${name}`),
      });
      undo.push(() => ch.teardown());
    }
    const createdMain = firstRun(db, config);

    const services: HostServices = {
      sessionQueue: (s) => sessions.queueFor(s),
      wake: (sid) => sessions.wake(sid),
      sandboxes: () => sessions.sandboxes(),
      stopSandbox: (sid) => sessions.stopSandbox(sid),
      sessionDeleted: (sid) => sessions.forget(sid),
      groupChanged: (gid) => sessions.groupChanged(gid),
      runtimeName: runtime.name,
    };
    const ctx: OpContext = { db, config, host: services };
    const terminal = channels.get('terminal') as TerminalChannel;
    const admin = new AdminServer(
      p.socket,
      (op, args, conn) =>
        HOST_ONLY.has(op) ? chatOp(centralDb, terminal, op, args, conn) : runOp(ctx, op, args),
      log.child('admin'),
    );

    await sessions.recover();
    scheduler.start();
    undo.push(() => scheduler?.stop());
    await admin.listen();
    const sweep = setInterval(() => sessions.sweep(), config.safetyPollMs);
    sweep.unref();
    log.info('host started', { home: config.home, runtime: runtime.name, pid: process.pid });

    let closing: Promise<void> | null = null;
    return {
      config,
      db,
      runtime,
      sessions,
      router,
      channels,
      createdMain,
      close() {
        // Every step runs whatever an earlier one threw (a channel's teardown): sandboxes stopped,
        // the database closed and the lock released, or the process would hang holding them.
        closing ??= (async () => {
          let failed = false;
          const step = async (what: string, fn: () => unknown) => {
            try {
              await fn();
            } catch (err) {
              failed = true;
              log.error(`stopping: ${what} failed`, { err });
            }
          };
          clearInterval(sweep);
          await step('the scheduler', () => scheduler?.stop());
          await step('the admin socket', () => admin.close());
          for (const [name, ch] of channels) await step(`the ${name} channel`, () => ch.teardown());
          await step('the sessions', () => sessions.close());
          await step('the gateway', () => gw.close());
          await step('the database', () => centralDb.close());
          await step('the host lock', () => release());
          log.info(failed ? 'host stopped, with errors (logged above)' : 'host stopped');
        })();
        return closing;
      },
    };
  } catch (err) {
    for (const step of undo.reverse()) {
      try {
        await step();
      } catch (cleanupErr) {
        log.warn('cleanup after a failed start failed', { err: cleanupErr });
      }
    }
    throw err;
  }
}

const AttachArgs = z.object({ platformId: z.string().min(1) });
const AckArgs = z.object({ platformId: z.string().min(1), keys: z.array(z.string()).max(10_000) });
const SendArgs = z.object({
  platformId: z.string().min(1),
  text: z
    .string()
    .min(1, 'message text is empty')
    .max(MAX_CHAT_TEXT, `message text is longer than ${MAX_CHAT_TEXT} characters`),
  sender: z.object({ id: z.string().min(1), name: z.string().optional() }),
  platformMessageId: z.string().optional(),
});

async function chatOp(
  db: Db,
  terminal: TerminalChannel,
  op: string,
  args: unknown,
  conn: Connection,
): Promise<unknown> {
  if (op === 'chat.attach') {
    const a = AttachArgs.safeParse(args);
    if (!a.success) throw badRequest('chat.attach needs a platformId');
    const detach = terminal.attach(a.data.platformId, conn);
    conn.onClose(detach);
    return { attached: a.data.platformId };
  }
  if (op === 'chat.ack') {
    const a = AckArgs.safeParse(args);
    if (!a.success) throw badRequest('chat.ack needs a platformId and the keys shown');
    terminal.shown(a.data.platformId, a.data.keys);
    return { acked: a.data.keys.length };
  }
  const a = SendArgs.safeParse(args);
  if (!a.success) throw badRequest(a.error.issues[0]?.message ?? 'bad chat.send arguments');
  const r = await terminal.receive(
    a.data.platformId,
    a.data.sender,
    a.data.text,
    a.data.platformMessageId ?? randomUUID(),
  );
  if (r.accepted.length === 0) {
    const chat = a.data.platformId;
    const mg = findMessagingGroup(db, 'terminal', chat);
    throw new PolyclawError(
      'not_found',
      mg && wiringsForMessagingGroup(db, mg.id).length
        ? `no wiring of the terminal chat "${chat}" took this message (see its --engage and --pattern: polyclaw wirings list)`
        : GROUP_NAME.test(chat)
          ? `no agent group answers the terminal chat "${chat}" (create one with: polyclaw groups create ${chat} --provider mock)`
          : `no agent group answers the terminal chat "${chat}" (group names are lowercase letters, digits, "-" and "_")`,
    );
  }
  return r;
}
