/**
 * `process` runtime: the runner as a plain child process, no isolation at all. Development
 * only: it must be chosen explicitly and it warns on every start. Mounts are not enforced;
 * sandbox paths in the command and env are translated back to host paths by the caller.
 */
import type { Logger } from '../shared/log.js';
import { registerRuntime } from './registry.js';
import type { RuntimeDeps, SandboxRuntime, SandboxSpec } from './runtime.js';
import { cleanupOrphanTrees, execTree, MARKER_ENV, marker, startTree } from './tree.js';

class ProcessRuntime implements SandboxRuntime {
  readonly name = 'process';
  readonly isolating = false;
  private log: Logger;
  constructor(private readonly deps: RuntimeDeps) {
    this.log = deps.log.child('process-sandbox');
  }

  async available() {
    return { ok: true as const, version: process.version };
  }

  private tree(spec: SandboxSpec) {
    return {
      argv: spec.command,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...spec.env, [MARKER_ENV]: marker(spec) },
      cwd: spec.cwd,
      spec,
      runDir: this.deps.runDir,
      log: this.log,
    };
  }

  start(spec: SandboxSpec) {
    this.log.warn(
      'running a session WITHOUT a sandbox (runtime "process"): the agent can read and write everything this user can',
      { sandbox: spec.id },
    );
    return startTree(this.tree(spec));
  }

  exec(spec: SandboxSpec, opts?: { timeoutMs?: number; input?: string }) {
    return execTree(this.tree(spec), opts);
  }

  async cleanupOrphans(installId: string) {
    return cleanupOrphanTrees(installId, this.deps.runDir, this.log);
  }
}

registerRuntime('process', (deps) => new ProcessRuntime(deps));
