/**
 * What only an admin may do, end to end through an in-process host on a chat channel with
 * admins and members (real bwrap sandbox, real runner, the mock agent):
 *  - tool approvals under the 'ask' policy: the question reaches the chat, only an admin's
 *    answer counts, and the agent hears the decision; the policy is validated when saved;
 *  - the command gate: a native agent slash command (/compact, /cost …) from a member is
 *    refused with a reply and never reaches the agent; an admin's goes through.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ops } from '../src/host/admin-ops.js';
import { getGroupByName } from '../src/host/store/groups.js';
import { ensureUser, grantRole } from '../src/host/store/users.js';
import { registerHostProvider } from '../src/providers/registry.js';
import { FullChannel, hostWithFullChannel } from './support/fake-channel.js';
import { waitFor } from './support/cli.js';

const FENCE = '```';
const APPROVE = `go\n${FENCE}mock\n${JSON.stringify({ approve: { tool: 'Bash', summary: 'make deploy' }, reply: 'tool {{approval}}' })}\n${FENCE}`;

describe('admin gates on a chat with admins and members', () => {
  const ch = new FullChannel();
  let env: Awaited<ReturnType<typeof hostWithFullChannel>>;
  let n = 0;
  const ctx = () => env.ctx();

  beforeAll(async () => {
    env = await hostWithFullChannel(ch, { POLYCLAW_RETRY_BASE_MS: '100' });
    ops['groups.update']!(ctx(), { name: 'main', approval: 'ask' });
    const ann = ensureUser(env.host.db, 'fullchat', 'ann', 'Ann');
    grantRole(env.host.db, ann.id, 'admin', getGroupByName(env.host.db, 'main')!.id);
  });
  afterAll(async () => {
    await env?.close();
  });

  const say = (sender: string, text: string, id = `in-${++n}`) => ch.say(sender, text, id).then(() => id);

  async function askedQuestion(from: number) {
    const q = await waitFor(() => ch.log.slice(from).find((e) => e.op === 'question'), 15_000, 'approval');
    return q.question as { questionId: string; options: string[]; question: string };
  }

  it('asks with buttons; a member’s press is refused, an admin’s Allow runs the tool', async () => {
    const before = ch.log.length;
    const id = await say('bob', APPROVE);
    const q = await askedQuestion(before);
    expect(q.options).toEqual(['Allow', 'Deny']);
    expect(q.question).toContain('Bash');
    expect(q.question).toContain('make deploy');
    expect(await ch.callbacks.onAnswer(q.questionId, 'Allow', { id: 'bob' })).toBe(false);
    expect(await ch.callbacks.onAnswer(q.questionId, 'Allow', { id: 'ann' })).toBe(true);
    await waitFor(() => ch.settled.find(([m]) => m === id), 15_000, 'turn settled');
    expect(ch.log.at(-1)).toMatchObject({ op: 'deliver', text: 'tool allowed' });
  });

  it('a member’s typed answer is refused with a reply; the admin’s typed Deny refuses the tool', async () => {
    const before = ch.log.length;
    const id = await say('bob', APPROVE);
    await askedQuestion(before);
    await say('bob', '1');
    await waitFor(
      () => ch.log.slice(before).find((e) => e.op === 'deliver' && /Only an admin/.test(String(e.text))),
      15_000,
      'refusal',
    );
    expect(ch.settled.find(([m]) => m === id)).toBeUndefined();
    await say('ann', 'deny');
    await waitFor(() => ch.settled.find(([m]) => m === id), 15_000, 'turn settled');
    expect(ch.log.at(-1)).toMatchObject({
      op: 'deliver',
      text: 'tool denied: An admin denied this tool call.',
    });
  });

  it('a retried turn asks again, and the answer reaches the new question, not the stale one', async () => {
    const before = ch.log.length;
    const id = await say('ann', APPROVE);
    await askedQuestion(before);
    // The sandbox goes away while the question waits: the attempt fails and is retried.
    const [sb] = env.host.sessions.sandboxes();
    await env.host.sessions.stopSandbox(sb!.sessionId);
    const again = ch.log.length;
    await askedQuestion(again);
    await say('ann', 'allow');
    await waitFor(() => ch.settled.find(([m]) => m === id), 15_000, 'turn settled');
    expect(ch.log.at(-1)).toMatchObject({ op: 'deliver', text: 'tool allowed' });
  });

  it('command gate: a member’s /compact is refused with a reply; an admin’s reaches the agent', async () => {
    const before = ch.log.length;
    const refused = await say('bob', '/compact');
    await waitFor(
      () => ch.log.slice(before).find((e) => e.op === 'deliver' && /only an admin/.test(String(e.text))),
      15_000,
      'refusal',
    );
    const id = await say('ann', '/compact');
    await waitFor(() => ch.settled.find(([m]) => m === id), 15_000, 'admin command settled');
    const delivered = ch.log
      .slice(before)
      .filter((e) => e.op === 'deliver')
      .map((e) => e.text);
    expect(delivered).toEqual([
      "/compact acts on the assistant's own session, so only an admin of this group may use it.",
      'echo: /compact',
    ]);
    expect(ch.settled.find(([m]) => m === refused)).toBeUndefined();
  });

  it('a provider without approvals refuses ask/deny when the group is saved, naming what it supports', () => {
    // A provider that declares no approval policies runs with 'bypass' only.
    registerHostProvider({
      name: 'bypass-only',
      contribute: () => ({ mounts: [], env: {}, ownsSurfaces: false }),
    });
    expect(() =>
      ops['groups.create']!(ctx(), { name: 'bo', provider: 'bypass-only', approval: 'ask' }),
    ).toThrow(/bypass-only provider does not support --approval ask \(supported: bypass\)/);
    expect(() => ops['groups.update']!(ctx(), { name: 'main', approval: 'sometimes' })).toThrow(
      /--approval must be one of bypass, ask, deny/,
    );
    expect(ops['groups.show']!(ctx(), { name: 'main' })).toMatchObject({ approval: 'ask' });
  });

  it('--endpoint must be a name a vault secret can have: a path such as ../anthropic is refused', () => {
    for (const endpoint of ['../anthropic', 'a/b', 'Upper'])
      expect(() => ops['groups.create']!(ctx(), { name: 'ep', provider: 'claude', endpoint })).toThrow(
        /--endpoint names a vault secret/,
      );
    expect(() => ops['groups.update']!(ctx(), { name: 'main', endpoint: '..' })).toThrow(
      /--endpoint names a vault secret/,
    );
    expect(getGroupByName(ctx().db, 'ep')).toBeNull();
  });
});
