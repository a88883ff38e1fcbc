/** Host-side provider contributions register here through src/providers/index.ts. */
import { Registry } from '../shared/registry.js';
import type { HostProvider } from './contribution.js';

export const hostProviderRegistry = new Registry<HostProvider>('provider');
export const registerHostProvider = (p: HostProvider) => hostProviderRegistry.register(p.name, p);
