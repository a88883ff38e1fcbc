/** Channel adapters register here through src/channels/index.ts (one import line each). */
import { Registry } from '../shared/registry.js';
import type { ChannelFactory } from './adapter.js';

export const channelRegistry = new Registry<ChannelFactory>('channel');
export const registerChannel = (name: string, factory: ChannelFactory) =>
  channelRegistry.register(name, factory);
