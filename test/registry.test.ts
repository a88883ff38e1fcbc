/**
 * Registration guards: import the real barrels (never the modules themselves, which would
 * self-register and hide a missing barrel line) and check every built-in is registered.
 */
import { describe, expect, it } from 'vitest';
import { channelRegistry } from '../src/channels/index.js';
import { hostProviderRegistry } from '../src/providers/index.js';
import { providerRegistry } from '../src/runner/providers/index.js';
import { runtimeRegistry } from '../src/sandbox/index.js';
import { toolRegistry } from '../src/runner/tools/index.js';
import { Registry } from '../src/shared/registry.js';

describe('registries', () => {
  it('register every built-in through the barrels', () => {
    expect(providerRegistry.names()).toEqual(['claude', 'codex', 'mock', 'opencode']);
    expect(hostProviderRegistry.names()).toEqual(['claude', 'codex', 'mock', 'opencode']);
    expect(channelRegistry.names()).toEqual(['agent', 'terminal']);
    expect(runtimeRegistry.names()).toEqual(['bwrap', 'process']);
    expect(toolRegistry.names()).toEqual([
      'add_reaction',
      'ask_user_question',
      'cancel_task',
      'edit_message',
      'list_destinations',
      'list_tasks',
      'pause_task',
      'resume_task',
      'schedule_task',
      'send_card',
      'send_file',
      'send_message',
      'update_task',
    ]);
  });

  it('every runner provider has a host-side contribution and the reverse', () => {
    expect(providerRegistry.names()).toEqual(hostProviderRegistry.names());
  });

  it('throw on a duplicate name and list the known names for an unknown one', () => {
    const r = new Registry<number>('widget');
    r.register('a', 1);
    r.register('b', 2);
    expect(() => r.register('a', 3)).toThrow('widget "a" is already registered');
    expect(() => r.get('zzz')).toThrow('unknown widget "zzz" (known: a, b)');
    expect(() => providerRegistry.get('claud')).toThrow(
      'unknown provider "claud" (known: claude, codex, mock, opencode)',
    );
  });
});
