/** Agent providers register here through src/runner/providers/index.ts (one import line each). */
import type { ProviderFactory } from '../../shared/provider.js';
import { Registry } from '../../shared/registry.js';

export const providerRegistry = new Registry<ProviderFactory>('provider');
export const registerProvider = (name: string, factory: ProviderFactory) =>
  providerRegistry.register(name, factory);
