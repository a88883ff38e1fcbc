/**
 * The sandbox seam (ARCHITECTURE §4). A runtime starts one isolated process tree per active
 * session with exactly the mounts it is given; everything not in the mount table is invisible
 * to an isolating runtime. Runtimes register through src/sandbox/index.ts.
 */
import type { Logger } from '../shared/log.js';

export interface Mount {
  /** Path on the host. */
  source: string;
  /** Path inside the sandbox. */
  target: string;
  mode: 'ro' | 'rw';
  /** A single file rather than a directory. */
  file?: boolean;
}

export interface Limits {
  memoryMb: number;
  cpus: number;
  pids: number;
}

export interface SandboxSpec {
  /** Unique per start; names the cgroup and the pid record. */
  id: string;
  /** Install the sandbox belongs to: orphan cleanup only ever touches its own install. */
  installId: string;
  mounts: Mount[];
  env: Record<string, string>;
  /** argv; paths in it are sandbox paths (see SandboxRuntime.isolating). */
  command: string[];
  cwd: string;
  limits: Limits;
  /**
   * Host folders no sandbox may see even where they lie inside the system view an isolating
   * runtime shows (a data folder under /usr): hidden there behind an empty one.
   */
  hidden?: string[];
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SandboxHandle {
  readonly id: string;
  /** The process group leader; 0 when the process never started (exited then reports a failure). */
  readonly pid: number;
  readonly exited: Promise<ExitInfo>;
  /** SIGTERM, then SIGKILL after graceMs; resolves when the whole tree is gone. */
  stop(graceMs?: number): Promise<ExitInfo>;
  /** Immediate SIGKILL of the whole tree. */
  kill(): void;
  /** Pipe to the sandbox's stdin; ending it tells the runner to shut down cleanly. */
  stdin: NodeJS.WritableStream | null;
  stdout: NodeJS.ReadableStream | null;
  stderr: NodeJS.ReadableStream | null;
}

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface SandboxRuntime {
  readonly name: string;
  /** True when mounts are enforced (sandbox paths differ from host paths). */
  readonly isolating: boolean;
  /** Whether this runtime can run here; `reason` says what to install or change when not. */
  available(): Promise<{ ok: true; version?: string } | { ok: false; reason: string }>;
  /** Start a long-running sandbox (the runner). stdin is a pipe that closes if the host dies. */
  start(spec: SandboxSpec): SandboxHandle;
  /** Run a one-off command with the same isolation, collecting its output (tests, task scripts). */
  exec(spec: SandboxSpec, opts?: { timeoutMs?: number; input?: string }): Promise<ExecResult>;
  /** Kill sandboxes of this install left over from a previous host (after kill -9). Returns how many. */
  cleanupOrphans(installId: string): Promise<number>;
}

export interface RuntimeDeps {
  log: Logger;
  /** Directory for pid records of running sandboxes ($POLYCLAW_HOME/run). */
  runDir: string;
}

export type RuntimeFactory = (deps: RuntimeDeps) => SandboxRuntime;
