/**
 * Session manager: owns each session's queue handles, its sandbox (through the pool) and the
 * outbound doorbell; each doorbell ring delivers replies, then settles messages from the
 * runner's acks (settlement.ts: completed, retried with backoff, or failed and the user told).
 * Work for one session is serialized through a promise chain; sessions run independently.
 */
import fs from 'node:fs';
import type { ChannelAdapter } from '../channels/adapter.js';
import type { Logger } from '../shared/log.js';
import { errorMessage, PolyclawError } from '../shared/errors.js';
import type { ExitInfo, SandboxRuntime } from '../sandbox/runtime.js';
import { bellsDir, OUTBOUND_BELL } from '../shared/session-db.js';
import type { Config } from './config.js';
import type { SandboxGatewayAccess } from '../gateway/contract.js';
import type { Db } from './db/open.js';
import { Delivery, type DeliveryDeps } from './delivery.js';
import { runtimeSignature } from './runtime-signature.js';
import { SandboxPool } from './sandbox-pool.js';
import { launchSandbox } from './sandbox-launch.js';
import { groupDir, sessionDir } from './sandbox-spec.js';
import { SessionQueue } from './session-queue.js';
import { quietSessions } from './quiet-queues.js';
import { publishMeta } from './session-meta.js';
import { attemptKey, attemptsInFlight, TurnWatch, turnsDue, type Attempt } from './turn-watch.js';
import { hasOpenQuestion } from './store/questions.js';
import { Settlement } from './settlement.js';
import { SessionWork } from './session-work.js';
import { openNotices } from './store/deliveries.js';
import { getGroup } from './store/groups.js';
import { getSession, listSessions, type Session } from './store/sessions.js';
import { listGroupTasks, toMirror } from './store/tasks.js';

export interface SessionManagerDeps {
  db: Db;
  config: Config;
  runtime: SandboxRuntime;
  installId: string;
  channels: Map<string, ChannelAdapter>;
  log: Logger;
  now?: () => number;
  /** Kind 'system' outbound rows with an action (task tools) go here instead of a channel. */
  onAction?: DeliveryDeps['onAction'];
  /** Issues each sandbox its gateway token (revoked when the sandbox exits). */
  gateway?: SandboxGatewayAccess;
  /** Watches a session's bells folder for the runner's outbound bell (default fs.watch). */
  watch?: typeof fs.watch;
}

/** How long a turn waiting for a person may go without a beat (its runner beats every 30 s). */
const ASKING_BEAT_MS = 60_000;

export class SessionManager {
  readonly pool: SandboxPool;
  readonly delivery: Delivery;
  private readonly settlement: Settlement;
  private queues = new Map<string, SessionQueue>();
  private watchers = new Map<string, fs.FSWatcher>();
  private dirty = new Set<string>();
  /**
   * What each session's sandbox was started with: the runtime signature of its group's
   * settings (groupChanged), and its group and provider (mustWait).
   */
  private builtFor = new Map<string, { signature: string; groupId: string; provider: string }>();
  /** How long each session's attempts in flight have run, on the host's clock (maxTurnMs). */
  private readonly turns: TurnWatch;
  /** Sessions whose start-up recovery has not run yet (see recover). */
  private recovering = new Set<string>();
  /** Sessions deleted with their group while this host runs (forget). */
  private deleted = new Set<string>();
  /** When each open queue was last asked for (quiet-queues.ts). */
  private lastUsed = new Map<string, number>();
  private readonly now: () => number;
  private readonly log: Logger;
  /** Each session's work in order, and the timers that come back to it (session-work.ts). */
  private readonly work: SessionWork;
  private closed = false;

  constructor(private readonly d: SessionManagerDeps) {
    this.now = d.now ?? Date.now;
    this.log = d.log.child('sessions');
    this.work = new SessionWork(this.log, (id) => this.deleted.has(id));
    this.turns = new TurnWatch(this.now, d.config.maxTurnMs);
    this.delivery = new Delivery({
      db: d.db,
      log: d.log.child('delivery'),
      channels: d.channels,
      maxAttempts: d.config.deliveryMaxAttempts,
      baseDelayMs: d.config.deliveryBaseMs,
      now: this.now,
      later: (sid, ms) => this.work.kickLater(sid, ms, (sid) => this.kick(sid)),
      onAction: d.onAction,
    });
    this.settlement = new Settlement({
      db: d.db,
      delivery: this.delivery,
      channels: d.channels,
      log: this.log,
      now: this.now,
      maxTries: d.config.maxTries,
      retryBaseMs: d.config.retryBaseMs,
      retryAt: (sid, ms) => this.work.after(ms, () => this.wake(sid)),
    });
    this.pool = new SandboxPool({
      maxConcurrent: d.config.sandbox.maxConcurrent,
      idleTimeoutMs: d.config.sandbox.idleTimeoutMs,
      log: d.log.child('pool'),
      now: this.now,
      start: (sid) => this.startSandbox(sid),
      onExit: (sid, info, _handle, requested) => this.onExit(sid, info, requested),
      onStartFailed: (sid, err) =>
        this.work.serial(sid, () => this.failDue(sid, `the sandbox could not start: ${errorMessage(err)}`)),
      isBusy: (sid) => this.isBusy(sid),
      mustWait: (sid, running) => this.mustWait(sid, running),
    });
  }

  /** The session's queue; creates its directory and publishes its metadata on first use. */
  queueFor(session: Session): SessionQueue {
    this.lastUsed.set(session.id, this.now());
    let q = this.queues.get(session.id);
    if (q) return q;
    const group = getGroup(this.d.db, session.agentGroupId);
    fs.mkdirSync(groupDir(this.d.config.home, group.name), { recursive: true });
    q = new SessionQueue(sessionDir(this.d.config.home, group.name, session.id), this.now);
    publishMeta(this.d.db, this.d.config.timezone, session, q);
    q.setTasks(listGroupTasks(this.d.db, group.id).map(toMirror));
    this.queues.set(session.id, q);
    this.watch(session.id, bellsDir(q.dir));
    return q;
  }

  /** A deleted session (its sandbox stopped first): its queue, watcher and bookkeeping go. */
  forget(sessionId: string): void {
    // Deleted: a retry or delivery timer still set for it finds nothing to wake, and a sandbox
    // started for it since its group's sandboxes were stopped goes too.
    this.deleted.add(sessionId);
    this.pool.drop(sessionId);
    const q = this.queues.get(sessionId);
    if (q) this.settlement.dropped(q.pending());
    this.closeQueue(sessionId);
    this.builtFor.delete(sessionId);
    this.work.forget(sessionId);
    this.dirty.delete(sessionId);
    this.turns.forget(sessionId);
  }

  private closeQueue(sessionId: string): void {
    this.queues.get(sessionId)?.close();
    this.queues.delete(sessionId);
    this.watchers.get(sessionId)?.close();
    this.watchers.delete(sessionId);
    this.lastUsed.delete(sessionId);
  }

  /** Close the queues of sessions that went quiet (quiet-queues.ts). */
  private closeQuiet(): void {
    const busy = (id: string) => this.underWay(id);
    const lastUsed = (id: string) => this.lastUsed.get(id) ?? 0;
    for (const id of quietSessions(this.queues, { busy, lastUsed, now: this.now(), log: this.log })) {
      this.log.debug('closing a quiet session queue', { session: id });
      this.closeQueue(id);
    }
  }

  /** Whether anything of the session is under way: a sandbox, a pass in its chain, a wake to come. */
  private underWay(id: string): boolean {
    return (
      this.pool.handle(id) !== null || this.work.busy(id) || this.dirty.has(id) || this.recovering.has(id)
    );
  }

  /**
   * A group's settings, wirings or destinations changed: republish them to its open sessions,
   * and retire the sandboxes started with other runtime settings (the next turn gets a new one).
   */
  groupChanged(agentGroupId: string): void {
    const group = getGroup(this.d.db, agentGroupId);
    const signature = runtimeSignature(group);
    for (const [sid, q] of this.queues) {
      const s = getSession(this.d.db, sid);
      if (s.agentGroupId !== agentGroupId) continue;
      publishMeta(this.d.db, this.d.config.timezone, s, q);
      const built = this.builtFor.get(sid);
      if (!this.pool.isRunning(sid) || built?.signature === signature) continue;
      // Another provider mounts other names over the group folder: the old sandbox goes now
      // (its turn is tried again), not after its turn, for the new ones wait for it (mustWait).
      if (built?.provider !== group.provider) void this.pool.stop(sid);
      else this.pool.retire(sid);
    }
  }

  /**
   * A sandbox of a group waits while one built for another provider of the same group is still
   * alive. Each mounts its provider's composed files over the group folder both write; in the
   * old one, the new one's mount points are plain names, and its agent could swap one for a
   * link between the host settling it and bwrap mounting there (overlay-targets.ts): bwrap
   * would follow the link and create files on the host.
   */
  private mustWait(sessionId: string, running: string[]): boolean {
    const group = getGroup(this.d.db, getSession(this.d.db, sessionId).agentGroupId);
    return running.some((r) => {
      const b = this.builtFor.get(r);
      return r !== sessionId && b?.groupId === group.id && b.provider !== group.provider;
    });
  }

  /** The session's queue if it is open (no directory is created). */
  openQueue(sessionId: string): SessionQueue | undefined {
    return this.queues.get(sessionId);
  }

  /** New triggering work may be due: make sure a runner will see it. */
  wake(sessionId: string): void {
    if (this.closed || this.recovering.has(sessionId)) return; // recover() wakes it when done
    if (this.deleted.has(sessionId)) return;
    if (this.pool.isRunning(sessionId)) {
      this.pool.touch(sessionId);
      return;
    }
    const q = this.queues.get(sessionId) ?? this.queueFor(getSession(this.d.db, sessionId));
    const due = turnsDue(q);
    if (due.length === 0) return;
    const nextAt = Math.min(...due.map((m) => m.processAfter));
    if (nextAt <= this.now()) this.pool.request(sessionId);
    else this.work.after(nextAt - this.now(), () => this.wake(sessionId));
  }

  /** Outbound changed (doorbell) or a retry is due: deliver, then settle acks. Coalesced per session. */
  kick(sessionId: string): void {
    if (this.dirty.has(sessionId) || this.deleted.has(sessionId)) return;
    this.dirty.add(sessionId);
    void this.work.serial(sessionId, async () => {
      this.dirty.delete(sessionId);
      // A sandbox asked to stop still owns its turn until it exits (it may yet commit the
      // answer): the exit charges what it left (onExit), not a pass in the stop's grace.
      const alive = this.pool.handle(sessionId) !== null;
      await this.processOutbound(sessionId, () => !alive);
    });
  }

  /**
   * At start-up: deliver what was written while we were down and settle every open message.
   * No sandbox starts for a session before its own recovery has run: one started early (an agent
   * chat's delivery during another session's recovery wakes it) would have its live turn
   * settled as the dead sandbox's, failed and run again.
   */
  async recover(): Promise<void> {
    const sessions = listSessions(this.d.db);
    for (const s of sessions) this.recovering.add(s.id);
    try {
      for (const s of sessions) {
        // One session's files, which its sandbox could write, must not keep the host from
        // starting for every other session: its failure is logged and recovery goes on.
        try {
          const dir = sessionDir(this.d.config.home, getGroup(this.d.db, s.agentGroupId).name, s.id);
          // A session with no files yet may still owe the user a notice (a refusal cut off by a crash).
          if (fs.existsSync(dir) || openNotices(this.d.db, s.id).length > 0) {
            this.queueFor(s);
            await this.work.serial(s.id, () => this.processOutbound(s.id, () => true));
          }
          this.recovering.delete(s.id);
          // Also a session a message reached during the recovery (its wake was held back).
          if (this.queues.has(s.id)) this.wake(s.id);
          // Every session ever spoken in is recovered: one with nothing to do does not keep its
          // files open (thousands of them ran the host out of descriptors before it was up).
          const q = this.queues.get(s.id);
          if (q && !this.underWay(s.id) && turnsDue(q).length === 0) this.closeQueue(s.id);
        } catch (err) {
          this.recovering.delete(s.id);
          this.log.error('a session could not be recovered; the others go on', { session: s.id, err });
        }
      }
    } finally {
      this.recovering.clear();
    }
  }

  /**
   * Safety net on a timer. Kills sandboxes whose turn has shown no heartbeat for
   * stuckTimeoutMs (retried as usual), and stops those whose turn has run past maxTurnMs by the
   * host's own clock — heartbeats come from the sandbox, so a looping agent (or one that forges
   * them) cannot hold a slot for ever: that turn fails, not retryable, and the user is told.
   */
  sweep(): void {
    for (const { sessionId } of this.pool.list()) {
      const q = this.queues.get(sessionId);
      if (!q) continue;
      try {
        const inFlight = attemptsInFlight(q);
        const asking = inFlight.length > 0 && hasOpenQuestion(this.d.db, sessionId, this.now());
        const over = this.turns.observe(sessionId, inFlight, asking);
        if (over.length) {
          this.endLongTurn(sessionId, over);
          continue;
        }
        const beat = Number(q.state('heartbeat')?.value ?? 0);
        // Waiting for a person, the runner beats only every 30 s (approvals.ts): not stuck then.
        const limit = asking
          ? Math.max(this.d.config.stuckTimeoutMs, ASKING_BEAT_MS)
          : this.d.config.stuckTimeoutMs;
        if (inFlight.length && beat && this.now() - beat > limit) {
          this.log.warn('turn is stuck: killing its sandbox', {
            session: sessionId,
            silentMs: this.now() - beat,
          });
          this.pool.handle(sessionId)?.kill();
        }
      } catch (err) {
        // One session's unreadable outbound.db (the sandbox wrote it) must not stop the sweep
        // of the others, nor the host: this runs on a timer, outside any session's chain.
        this.log.error('cannot read the session queue', { session: sessionId, err });
      }
      this.kick(sessionId);
    }
    this.closeQuiet();
  }

  /**
   * Fail the attempts that ran past maxTurnMs (the user is told), then stop the sandbox as the
   * host asked for it. Checked again in the session's chain: an attempt that ended meanwhile
   * is left alone, and a sandbox that is not the one the sweep saw is not stopped.
   */
  private endLongTurn(sessionId: string, over: Attempt[]): void {
    const limit = `${Math.round(this.d.config.maxTurnMs / 60_000)} min`;
    const seen = this.pool.handle(sessionId);
    this.turns.forget(sessionId);
    void this.work.serial(sessionId, async () => {
      const session = getSession(this.d.db, sessionId);
      const q = this.queueFor(session);
      const still = new Set(attemptsInFlight(q).map(attemptKey));
      const ids = new Set(over.filter((a) => still.has(attemptKey(a))).map((a) => a.messageId));
      if (ids.size === 0) return;
      this.log.warn('turn ran past maxTurnMs: stopping its sandbox', { session: sessionId, limit });
      const why = `the turn ran longer than the ${limit} limit (maxTurnMs); ask again in smaller steps`;
      for (const m of q.pending().filter((x) => ids.has(x.id)))
        await this.settlement.attemptFailed(session, q, m, why, false);
      if (seen && this.pool.handle(sessionId) === seen) void this.pool.stop(sessionId, 0);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.work.stopTimers(); // no retry or delivery wake during the sandboxes' stop grace
    for (const w of this.watchers.values()) w.close();
    await this.pool.stopAll();
    await this.work.close();
    for (const q of this.queues.values()) q.close();
    this.queues.clear();
  }

  sandboxes() {
    return this.pool.list();
  }

  async stopSandbox(sessionId: string): Promise<void> {
    await this.pool.stop(sessionId);
  }

  /**
   * Whether the session's sandbox has work: an attempt in flight, or a message due now. One
   * waiting out a retry's backoff is not (the backoff can reach hours): its sandbox may be
   * stopped for another session, and the retry's wake starts one again when it falls due.
   */
  private isBusy(sessionId: string): boolean {
    const q = this.queues.get(sessionId);
    if (!q) return false;
    const now = this.now();
    const due = turnsDue(q);
    if (due.length === 0) return false;
    if (due.some((m) => m.processAfter <= now)) return true;
    try {
      return attemptsInFlight(q).length > 0;
    } catch {
      // outbound.db is the sandbox's to write: unreadable, the session counts as busy (turnsDue
      // does the same) — this runs from the pool's timers, where a throw would end the host.
      return true;
    }
  }

  private startSandbox(sessionId: string) {
    const session = getSession(this.d.db, sessionId);
    const group = getGroup(this.d.db, session.agentGroupId);
    const handle = launchSandbox(this.d, group, sessionId, this.queueFor(session));
    this.builtFor.set(sessionId, {
      signature: runtimeSignature(group),
      groupId: group.id,
      provider: group.provider,
    });
    return handle;
  }

  private onExit(sessionId: string, info: ExitInfo, requested: boolean): void {
    this.log.info('sandbox exited', { session: sessionId, ...info, requested });
    this.turns.forget(sessionId);
    if (this.deleted.has(sessionId)) return;
    // Read now, not in the chain: a kick queued before the exit may settle the turn first
    // (moving it to a new try), and what waited behind it would then look untaken. And only
    // the attempts in flight now are the exited sandbox's: by the time the chain runs, a new
    // sandbox may have taken a message (its own 'processing' ack), which must not be charged.
    const inFlight = this.inFlightAt(sessionId);
    const charge = !requested && inFlight !== null && inFlight.size === 0;
    void this.work.serial(sessionId, async () => {
      if (charge) {
        const session = getSession(this.d.db, sessionId);
        await this.settlement.untakenFailed(session, this.queueFor(session), info);
      }
      await this.processOutbound(sessionId, (a) => inFlight?.has(attemptKey(a)) ?? true);
      this.wake(sessionId);
    });
  }

  /** The session's attempts in flight (keys); null when unreadable (then nothing is charged as untaken). */
  private inFlightAt(sessionId: string): Set<string> | null {
    const q = this.queues.get(sessionId);
    if (!q) return new Set();
    try {
      return new Set(attemptsInFlight(q).map(attemptKey));
    } catch (err) {
      this.log.warn('cannot read the session queue at sandbox exit', { session: sessionId, err });
      return null;
    }
  }

  private watch(sessionId: string, dir: string): void {
    if (this.watchers.has(sessionId)) return;
    let w: fs.FSWatcher;
    try {
      w = (this.d.watch ?? fs.watch)(dir, { persistent: false }, (_e, name) => {
        // The bell, not outbound.db-wal: a -wal event can precede the commit's visibility.
        if (name === OUTBOUND_BELL) this.kick(sessionId);
      });
    } catch (err) {
      // It cannot start (inotify limits used up): the bell is a hint, the sweep brings replies.
      this.log.warn('outbound watch could not start; safety sweep covers it', { session: sessionId, err });
      return;
    }
    w.on('error', (err) =>
      this.log.warn('outbound watch failed; safety sweep covers it', { session: sessionId, err }),
    );
    this.watchers.set(sessionId, w);
  }

  /** `stopped`: whether an open attempt's sandbox is gone (Settlement.reconcile). */
  private async processOutbound(sessionId: string, stopped: (a: Attempt) => boolean): Promise<void> {
    const session = getSession(this.d.db, sessionId);
    const q = this.queueFor(session);
    // Acks are read BEFORE delivering: the runner commits a reply and its ack together, so
    // every ack in this snapshot has its replies visible to the delivery pass that follows.
    // Reading acks after delivery could settle a message whose reply landed in between.
    // Only the pending ids are read first: settlement acts on acked attempts alone, and every
    // ack here belongs to one of these ids, so the rows themselves are read (and parsed) after
    // the delivery, off the reply's path — and not at all when no attempt was acked.
    let acks;
    try {
      acks = q.acksFor(q.pendingIds());
    } catch (err) {
      if (!(err instanceof PolyclawError && err.code === 'sandbox')) throw err;
      // The sandbox broke its own reply queue: nothing it says can be read, so its turns
      // cannot end. Stop it and tell the user, instead of leaving the messages pending.
      this.log.error('session reply queue refused: stopping its sandbox', { session: sessionId, err });
      this.pool.handle(sessionId)?.kill();
      return this.failDue(sessionId, err.message, false);
    }
    const drained = await this.delivery.process(session, q);
    if (acks.length === 0) return;
    await this.settlement.reconcile(session, q, q.pending(), acks, stopped, drained);
    // A turn may have ended: a session waiting for a slot may have one now.
    this.pool.makeRoom();
  }

  /** Fail every due message of a session (retried as usual when `retryable`). */
  private async failDue(sessionId: string, reason: string, retryable = true): Promise<void> {
    const session = getSession(this.d.db, sessionId);
    const q = this.queueFor(session);
    for (const m of q.pending().filter((x) => x.trigger && x.processAfter <= this.now())) {
      await this.settlement.attemptFailed(session, q, m, reason, retryable);
    }
  }
}
