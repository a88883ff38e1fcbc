/**
 * Picks the sandbox runtime: an explicit choice is honoured (and fails loudly if unusable);
 * "auto" means bwrap, and never silently falls back to running without isolation.
 */
import { PolyclawError } from '../shared/errors.js';
import { runtimeRegistry } from './registry.js';
import type { RuntimeDeps, SandboxRuntime } from './runtime.js';

export async function chooseRuntime(choice: string, deps: RuntimeDeps): Promise<SandboxRuntime> {
  const name = choice === 'auto' ? 'bwrap' : choice;
  const runtime = runtimeRegistry.get(name)(deps);
  const ok = await runtime.available();
  if (!ok.ok) {
    const hint =
      choice === 'auto'
        ? ' — or run without isolation, for development only, with POLYCLAW_SANDBOX=process'
        : '';
    throw new PolyclawError('sandbox', `sandbox runtime "${name}" is not usable: ${ok.reason}${hint}`);
  }
  return runtime;
}
