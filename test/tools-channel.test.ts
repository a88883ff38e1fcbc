/**
 * Tool operations on a channel that has every capability (edit, reactions, cards, question
 * buttons), through an in-process host with real bwrap sandboxes and the real tool server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FullChannel, hostWithFullChannel } from './support/fake-channel.js';
import { waitFor } from './support/cli.js';

const FENCE = '```';
const directive = (d: object) => `do it\n${FENCE}mock\n${JSON.stringify(d)}\n${FENCE}`;

describe('tools on a full-capability channel', () => {
  let env: Awaited<ReturnType<typeof hostWithFullChannel>>;
  const ch = new FullChannel();
  let n = 0;

  beforeAll(async () => {
    env = await hostWithFullChannel(ch);
  });
  afterAll(async () => {
    await env?.close();
  });

  async function turn(text: string) {
    const id = `in-${++n}`;
    const before = ch.log.length;
    await ch.say('ann', text, id);
    await waitFor(() => ch.settled.find(([m]) => m === id), 15_000, `turn ${id} settled`);
    return ch.log.slice(before);
  }

  it('edits its own message in place and reacts to the message it received', async () => {
    const first = await turn(directive({ reply: 'draft' }));
    expect(first).toMatchObject([{ op: 'deliver', text: 'draft' }]);
    const out = await turn(
      directive({
        tools: [
          { name: 'edit_message', args: { seq: 1, text: 'final' } },
          { name: 'add_reaction', args: { seq: 4, emoji: '✅' } },
        ],
        reply: '',
      }),
    );
    expect(out).toEqual([
      expect.objectContaining({ op: 'edit', id: 'fm-1', text: 'final' }),
      expect.objectContaining({ op: 'react', id: 'in-2', emoji: '✅' }),
    ]);
  });

  it('sends a card as a card', async () => {
    const out = await turn(
      directive({
        tools: [{ name: 'send_card', args: { card: { title: 'T', text: 'body' }, fallbackText: 'T: body' } }],
        reply: '',
      }),
    );
    expect(out).toEqual([
      expect.objectContaining({ op: 'card', card: { title: 'T', text: 'body' }, fallbackText: 'T: body' }),
    ]);
  });

  it('asks with buttons; a button press answers and the agent receives the answer', async () => {
    const id = `in-${++n}`;
    const before = ch.log.length;
    await ch.say(
      'ann',
      directive({
        tools: [
          {
            name: 'ask_user_question',
            args: { question: 'Ship it?', options: ['yes', 'no'], title: 'Release', timeout: 30 },
          },
        ],
        reply: 'answer was {{tool}}',
      }),
      id,
    );
    const q = await waitFor(
      () => ch.log.slice(before).find((e) => e.op === 'question'),
      15_000,
      'question sent',
    );
    const question = q.question as { questionId: string; options: string[]; title: string };
    expect(question).toMatchObject({ options: ['yes', 'no'], title: 'Release' });
    expect(await ch.callbacks.onAnswer(question.questionId, 'maybe', { id: 'ann' })).toBe(false);
    expect(await ch.callbacks.onAnswer(question.questionId, 'yes', { id: 'ann' })).toBe(true);
    expect(await ch.callbacks.onAnswer(question.questionId, 'no', { id: 'bob' })).toBe(false);
    await waitFor(() => ch.settled.find(([m]) => m === id), 15_000, 'turn settled');
    expect(ch.log.at(-1)).toMatchObject({ op: 'deliver', text: 'answer was The person chose: yes' });
  });
});
