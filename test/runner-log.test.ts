/** A sandbox's stderr is re-logged under the host's own tags, never copied into the host log. */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { MAX_RUNNER_LOG_LINE, relayRunnerLog } from '../src/host/runner-log.js';
import { memoryLogger } from '../src/shared/log.js';

function relay() {
  const log = memoryLogger();
  const stream = new PassThrough();
  relayRunnerLog(stream, log.child('runner', { session: 's-1' }));
  const ended = new Promise((r) => stream.on('end', r));
  return {
    lines: log.lines,
    async write(...chunks: string[]) {
      for (const c of chunks) stream.write(c);
      stream.end();
      await ended;
    },
  };
}

describe('runner log relay', () => {
  it("keeps a runner line's level, message and fields under the host's component and session", async () => {
    const r = relay();
    await r.write(
      JSON.stringify({ t: '1999', level: 'warn', component: 'codex', session: 's-1', msg: 'slow', ms: 5 }) +
        '\n',
    );
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]).toMatchObject({
      level: 'warn',
      component: 'runner',
      session: 's-1',
      msg: 'slow',
      ms: 5,
      from: 'codex',
    });
    expect(r.lines[0]!.t).not.toBe('1999');
  });

  it('a forged host line stays a runner line of its own session', async () => {
    const r = relay();
    const forged = { level: 'error', component: 'gateway', session: 'someone-else', msg: 'vault key leaked' };
    await r.write(JSON.stringify(forged) + '\n', 'plain text\n', '{"level":"fatal","msg":7}\n', '[1,2]\n');
    expect(r.lines.map((l) => [l.component, l.session, l.level, l.msg])).toEqual([
      ['runner', 's-1', 'error', 'vault key leaked'],
      ['runner', 's-1', 'info', 'plain text'],
      ['runner', 's-1', 'info', '(runner line without a message)'],
      ['runner', 's-1', 'info', '[1,2]'],
    ]);
    expect(r.lines[0]!.from).toBe('gateway');
  });

  it('joins a line split across chunks and cuts one without an end at the limit', async () => {
    const r = relay();
    const huge = 'x'.repeat(MAX_RUNNER_LOG_LINE * 3);
    await r.write(
      '{"level":"info",',
      '"msg":"joined"}\nnext',
      ' line\n',
      huge.slice(0, 10_000),
      huge,
      '\nafter\n',
      'last',
    );
    const shown = r.lines.map((l) => (String(l.msg).length > 100 ? `cut:${String(l.msg).length}` : l.msg));
    expect(shown).toEqual(['joined', 'next line', `cut:${MAX_RUNNER_LOG_LINE}`, 'after', 'last']);
    expect(r.lines[2]!.truncated).toBe(true);
  });
});
