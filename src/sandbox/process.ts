/**
 * `process` runtime: the runner as a plain child process, no isolation at all. Development
 * only: it must be chosen explicitly and it warns on every start. Mounts are not enforced;
 * sandbox paths in the command and env are translated back to host paths by the caller.
 */
import { registerRuntime } from './registry.js';
import type { RuntimeDeps, SandboxSpec } from './runtime.js';
import { MARKER_ENV, marker, ProcessTreeRuntime } from './tree.js';

class ProcessRuntime extends ProcessTreeRuntime {
  readonly name = 'process';
  readonly isolating = false;

  constructor(deps: RuntimeDeps) {
    super(deps, 'process-sandbox');
  }

  async available() {
    return { ok: true as const, version: process.version };
  }

  protected launch(spec: SandboxSpec) {
    return {
      argv: spec.command,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...spec.env, [MARKER_ENV]: marker(spec) },
      cwd: spec.cwd,
    };
  }

  override start(spec: SandboxSpec) {
    this.log.warn(
      'running a session WITHOUT a sandbox (runtime "process"): the agent can read and write everything this user can',
      {
        sandbox: spec.id,
      },
    );
    return super.start(spec);
  }
}

registerRuntime('process', (deps) => new ProcessRuntime(deps));
