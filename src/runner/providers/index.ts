// Barrel: one line per agent provider. Importing this module registers them all.
import './mock.js';

export { providerRegistry } from './registry.js';
