/** The mock provider needs nothing from the host: no mounts, no env, no surfaces. */
import { registerHostProvider } from './registry.js';

registerHostProvider({
  name: 'mock',
  approvals: ['bypass', 'ask', 'deny'],
  contribute: () => ({ mounts: [], env: {}, ownsSurfaces: false }),
});
