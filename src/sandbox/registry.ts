/** Sandbox runtimes register here through src/sandbox/index.ts (one import line each). */
import { Registry } from '../shared/registry.js';
import type { RuntimeFactory } from './runtime.js';

export const runtimeRegistry = new Registry<RuntimeFactory>('sandbox runtime');
export const registerRuntime = (name: string, factory: RuntimeFactory) =>
  runtimeRegistry.register(name, factory);
