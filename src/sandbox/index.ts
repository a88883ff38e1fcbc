// Barrel: one line per sandbox runtime. Importing this module registers them all.
import './bwrap.js';
import './process.js';

export { runtimeRegistry } from './registry.js';
export { chooseRuntime } from './choose.js';
