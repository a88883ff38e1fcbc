// Barrel: one line per provider's host-side contribution. Importing this registers them all.
import './mock.js';

export { hostProviderRegistry } from './registry.js';
