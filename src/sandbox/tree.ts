/**
 * Starting and stopping a sandbox's process tree, shared by every runtime: its own process
 * group and cgroups, a pid record in the run folder so a later host can find an orphan,
 * and a stop that escalates from SIGTERM to SIGKILL and waits until the tree is gone.
 *
 * Invariants: only a sandbox's own group is ever signalled. A spawn that fails has no pid, and
 * the group of pid 0 is the host's own while pid 1 is init, so a missing pid or one of 0 or 1
 * is never signalled; such a start ends through `exited` as a failure. A started tree is
 * recorded before startTree returns, or killed before it throws: nothing runs untracked.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../shared/log.js';
import { cgroupName, createCgroups, destroyCgroups, installCgroups, joinWrapper } from './limits.js';
import type {
  ExecResult,
  ExitInfo,
  RuntimeDeps,
  SandboxHandle,
  SandboxRuntime,
  SandboxSpec,
} from './runtime.js';

export const MARKER_ENV = 'POLYCLAW_SANDBOX_ID';
export const marker = (spec: Pick<SandboxSpec, 'installId' | 'id'>) => `${spec.installId}/${spec.id}`;

interface PidRecord {
  pid: number;
  installId: string;
  id: string;
  cgroups: string[];
  startedAt: number;
}

export interface TreeOptions {
  argv: string[];
  /** Environment of the spawned argv[0] (bwrap clears it for the inner command). */
  env: Record<string, string>;
  cwd?: string;
  spec: SandboxSpec;
  runDir: string;
  log: Logger;
  /** How signals are sent (process.kill); tests observe it. */
  kill?: KillFn;
}

export type KillFn = (pid: number, sig: NodeJS.Signals) => void;
const systemKill: KillFn = (pid, sig) => process.kill(pid, sig);

function signalGroup(pid: number, sig: NodeJS.Signals, log: Logger, kill: KillFn = systemKill): void {
  if (!Number.isInteger(pid) || pid <= 1) {
    log.debug('no sandbox process to signal', { pid, sig });
    return;
  }
  try {
    kill(-pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') log.warn('signal failed', { pid, sig, err });
  }
}

function prepare(opts: TreeOptions) {
  const cg = createCgroups(cgroupName(opts.spec.installId, opts.spec.id), opts.spec.limits, opts.log);
  const argv = [...joinWrapper(cg), ...opts.argv];
  return { cg, argv };
}

export function startTree(opts: TreeOptions): SandboxHandle {
  // Before anything runs: a run folder that cannot be made fails the start with nothing to undo.
  fs.mkdirSync(opts.runDir, { recursive: true });
  const { cg, argv } = prepare(opts);
  let child: ChildProcess;
  try {
    child = spawn(argv[0]!, argv.slice(1), {
      env: opts.env,
      cwd: opts.cwd,
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (err) {
    if (cg) destroyCgroups(cg.dirs, opts.log);
    throw err;
  }
  // No pid: the spawn failed (missing binary or folder, no processes or files left); 'error' says why.
  const pid = child.pid ?? 0;
  const recordFile = path.join(opts.runDir, `${opts.spec.id}.json`);
  const exited = new Promise<ExitInfo>((resolve) => {
    let done = false;
    const finish = (info: ExitInfo) => {
      if (done) return;
      done = true;
      signalGroup(pid, 'SIGKILL', opts.log, opts.kill);
      if (cg) destroyCgroups(cg.dirs, opts.log);
      removeRecord(recordFile, opts.log);
      resolve(info);
    };
    child.once('exit', (code, signal) => finish({ code, signal }));
    child.once('error', (err) => {
      opts.log.error('sandbox failed to start', { command: argv[0], err });
      finish({ code: 127, signal: null });
    });
  });
  // A broken pipe on stdin just means the sandbox is gone; `exited` reports that.
  child.stdin?.on('error', (err) => opts.log.debug('sandbox stdin closed', { err }));
  if (pid) {
    const rec: PidRecord = {
      pid,
      installId: opts.spec.installId,
      id: opts.spec.id,
      cgroups: cg?.dirs ?? [],
      startedAt: Date.now(),
    };
    try {
      fs.writeFileSync(recordFile, JSON.stringify(rec));
    } catch (err) {
      // Unrecorded, a later host could not find it: the tree goes first ('exit' then cleans up).
      signalGroup(pid, 'SIGKILL', opts.log, opts.kill);
      throw err;
    }
  }
  return handle(opts.spec.id, pid, child, exited, opts.log, opts.kill);
}

function removeRecord(file: string, log: Logger): void {
  try {
    fs.rmSync(file, { force: true });
  } catch (err) {
    log.warn('could not remove sandbox record', { file, err });
  }
}

function handle(
  id: string,
  pid: number,
  child: ChildProcess,
  exited: Promise<ExitInfo>,
  log: Logger,
  kill?: KillFn,
): SandboxHandle {
  return {
    id,
    pid,
    exited,
    stdin: child.stdin,
    stdout: child.stdout,
    stderr: child.stderr,
    kill: () => signalGroup(pid, 'SIGKILL', log, kill),
    async stop(graceMs = 3000) {
      signalGroup(pid, 'SIGTERM', log, kill);
      const timer = setTimeout(() => signalGroup(pid, 'SIGKILL', log, kill), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

export async function execTree(
  opts: TreeOptions,
  exec: { timeoutMs?: number; input?: string } = {},
): Promise<ExecResult> {
  const h = startTree(opts);
  let stdout = '';
  let stderr = '';
  h.stdout?.setEncoding('utf8');
  h.stderr?.setEncoding('utf8');
  h.stdout?.on('data', (d: string) => (stdout += d));
  h.stderr?.on('data', (d: string) => (stderr += d));
  const timer = exec.timeoutMs ? setTimeout(() => h.kill(), exec.timeoutMs) : null;
  h.stdin?.end(exec.input ?? '');
  const info = await h.exited;
  if (timer) clearTimeout(timer);
  return { ...info, stdout, stderr };
}

function cmdlineHasMarker(pid: number, mark: string): boolean {
  for (const f of ['cmdline', 'environ']) {
    try {
      if (fs.readFileSync(`/proc/${pid}/${f}`, 'latin1').includes(mark)) return true;
    } catch {
      // process gone or unreadable: not ours to kill
    }
  }
  return false;
}

/** Kill leftovers of this install: pid records whose process still carries our marker, and our cgroups. */
export function cleanupOrphanTrees(installId: string, runDir: string, log: Logger): number {
  let killed = 0;
  let files: string[] = [];
  try {
    files = fs.readdirSync(runDir).filter((f) => f.endsWith('.json'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  for (const f of files) {
    const file = path.join(runDir, f);
    let rec: PidRecord;
    try {
      rec = JSON.parse(fs.readFileSync(file, 'utf8')) as PidRecord;
    } catch (err) {
      log.warn('unreadable sandbox record removed', { file, err });
      fs.rmSync(file, { force: true });
      continue;
    }
    if (rec.installId !== installId) continue;
    if (cmdlineHasMarker(rec.pid, `${installId}/${rec.id}`)) {
      signalGroup(rec.pid, 'SIGKILL', log);
      killed++;
    }
    if (rec.cgroups.length) destroyCgroups(rec.cgroups, log);
    fs.rmSync(file, { force: true });
  }
  const left = installCgroups(installId);
  if (left.length) destroyCgroups(left, log);
  return killed;
}

/**
 * Base of runtimes that run the sandbox as a local process tree (bwrap, process): they differ
 * only in how they wrap spec.command; start, exec and orphan cleanup are shared.
 */
export abstract class ProcessTreeRuntime implements SandboxRuntime {
  abstract readonly name: string;
  abstract readonly isolating: boolean;
  protected readonly log: Logger;

  constructor(
    protected readonly deps: RuntimeDeps,
    component: string,
  ) {
    this.log = deps.log.child(component);
  }

  abstract available(): ReturnType<SandboxRuntime['available']>;

  /** argv, environment and cwd that run spec.command under this runtime. */
  protected abstract launch(spec: SandboxSpec): { argv: string[]; env: Record<string, string>; cwd?: string };

  private tree(spec: SandboxSpec): TreeOptions {
    return { ...this.launch(spec), spec, runDir: this.deps.runDir, log: this.log };
  }

  start(spec: SandboxSpec): SandboxHandle {
    return startTree(this.tree(spec));
  }

  exec(spec: SandboxSpec, opts?: { timeoutMs?: number; input?: string }): Promise<ExecResult> {
    return execTree(this.tree(spec), opts);
  }

  async cleanupOrphans(installId: string): Promise<number> {
    return cleanupOrphanTrees(installId, this.deps.runDir, this.log);
  }
}
