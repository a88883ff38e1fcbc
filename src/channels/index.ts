// Barrel: one line per built-in channel. Importing this module registers them all.
import './agent.js';
import './terminal.js';

export { channelRegistry } from './registry.js';
