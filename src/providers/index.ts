// Barrel: one line per provider's host-side contribution. Importing this registers them all.
import './mock.js';
import './codex.js';
import './opencode.js';
import './claude.js';

export { hostProviderRegistry } from './registry.js';
