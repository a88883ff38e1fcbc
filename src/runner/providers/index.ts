// Barrel: one line per agent provider. Importing this module registers them all.
import './mock.js';
import './codex.js';
import './opencode.js';
import './claude.js';

export { providerRegistry } from './registry.js';
