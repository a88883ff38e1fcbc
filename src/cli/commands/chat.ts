/**
 * `polyclaw chat`: talk to an agent group from the terminal through the running host.
 * With -m TEXT it sends one message, prints the replies to it once the message has settled
 * (completed or failed), and exits (status 1 if it failed). Without -m it is interactive.
 * Replies kept while no client was connected arrive first, marked as backlog.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import readline from 'node:readline';
import { ensureHome, loadConfig, MAX_TIMER_MS, paths } from '../../host/config.js';
import { PolyclawError } from '../../shared/errors.js';
import { MAX_CHAT_TEXT } from '../../shared/messages.js';
import type { AdminClient } from '../admin-client.js';
import { connectWhileHeld } from '../admin-call.js';
import { parse } from '../args.js';
import { HelpRequested, UsageError } from '../output.js';
import { forTerminal, FRESH_LINE } from '../terminal-text.js';

const USAGE = 'polyclaw chat [--group NAME] [-m TEXT] [--json] [--timeout SECONDS]';
/** Keys confirmed per chat.ack request (the host takes up to 10,000, in a line of at most 1 MB). */
const ACK_BATCH = 1000;
/** How long a chat whose input ended (a pipe) waits for the answers to what it sent. */
const PIPED_WAIT_MS = 300_000;

interface Reply {
  /** The terminal's id of the message (edits name it). */
  id?: string;
  seq: number;
  text: string;
  files: string[];
  kind: string;
  key: string;
  replyTo: string | null;
  backlog?: boolean;
}

async function connect(): Promise<AdminClient> {
  const { home } = loadConfig();
  ensureHome(home);
  const client = await connectWhileHeld(paths(home).socket, paths(home).lock);
  if (!client)
    throw new PolyclawError(
      'unavailable',
      'the Polyclaw host is not running: start it with `polyclaw up` (or `npm start`)',
    );
  return client;
}

export async function chatCommand(argv: string[]): Promise<number> {
  const { values: v, positionals } = parse(
    argv,
    {
      group: { type: 'string', short: 'g' },
      message: { type: 'string', short: 'm' },
      timeout: { type: 'string' },
    },
    USAGE,
  );
  if (v.help) throw new HelpRequested(USAGE);
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}" — usage: ${USAGE}`);
  const timeoutS = v.timeout === undefined ? 300 : Number(v.timeout);
  const message = v.message as string | undefined;
  if (!Number.isFinite(timeoutS) || timeoutS <= 0)
    throw new UsageError(`--timeout must be a positive number of seconds`);
  if (timeoutS * 1000 > MAX_TIMER_MS)
    throw new UsageError(`--timeout is at most ${Math.floor(MAX_TIMER_MS / 1000)} seconds (about 24.8 days)`);
  if (message !== undefined && message.trim() === '') throw new UsageError('-m needs a non-empty message');
  const long = message === undefined ? null : tooLong(message);
  if (long) throw new UsageError(long);
  if (v.json && message === undefined)
    throw new UsageError('--json goes with -m TEXT (the interactive chat prints text for a person)');
  const platformId = (v.group as string | undefined) ?? 'main';
  if (!platformId.trim()) throw new UsageError('--group is empty: give the name of a group');
  const client = await connect();
  try {
    if (message !== undefined)
      return await oneShot(client, platformId, message, v.json === true, timeoutS * 1000);
    return await interactive(client, platformId);
  } finally {
    client.close();
  }
}

async function oneShot(
  client: AdminClient,
  platformId: string,
  text: string,
  json: boolean,
  timeoutMs: number,
): Promise<number> {
  const pmid = randomUUID();
  const seen = new Set<string>();
  const replies: Reply[] = [];
  const backlog: Reply[] = [];
  let settle!: (status: string) => void;
  const settled = new Promise<string>((r) => (settle = r));
  // Shown here, and so confirmed: the replies to this message (edits of them applied) and what
  // was kept while no chat was connected. Another client's live conversation in the same chat
  // is neither shown nor confirmed: it stays kept for whoever has not seen it.
  client.onEvent((ev) => {
    if (ev.event === 'message') {
      const r = ev as unknown as Reply;
      if (seen.has(r.key) || (r.replyTo !== pmid && !r.backlog)) return;
      seen.add(r.key);
      (r.replyTo === pmid ? replies : backlog).push(r);
      if (!json && r.replyTo !== pmid) process.stdout.write(`(earlier) ${shown(r)}\n`);
    } else if (ev.event === 'edit') {
      const mine = replies.find((r) => r.id === ev.id);
      if (!mine || seen.has(String(ev.key))) return;
      seen.add(String(ev.key));
      mine.text = String(ev.text);
    } else if (ev.event === 'settled' && ev.messageId === pmid) settle(ev.status as string);
  });
  client.onClose(() => settle('disconnected'));
  await client.request('chat.attach', { platformId });
  const sent = (await client.request('chat.send', {
    platformId,
    text,
    sender: sender(),
    platformMessageId: pmid,
  })) as { accepted: Array<{ engaged: boolean; answered?: boolean; refused?: boolean }> };
  let status: string;
  if (sent.accepted.some((a) => a.answered)) status = 'answered';
  else if (sent.accepted.length > 0 && sent.accepted.every((a) => a.refused)) status = 'refused';
  else if (!sent.accepted.some((a) => a.engaged)) status = 'stored';
  else {
    let timer: NodeJS.Timeout | undefined;
    status = await Promise.race([
      settled,
      new Promise<string>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs))),
    ]);
    clearTimeout(timer);
  }
  const view = (r: Reply) => ({ seq: r.seq, text: r.text, files: r.files, kind: r.kind });
  const ok = ['completed', 'stored', 'answered'].includes(status);
  const problem: Record<string, string> = {
    timeout: `no answer within ${timeoutMs / 1000}s (the message stays queued)`,
    failed: 'the message failed (the reply above says why)',
    refused: 'the message was refused (the reply above says why)',
    disconnected: 'the host went away before the answer (it will be kept for your next chat)',
  };
  const error = ok ? undefined : { code: status, message: problem[status] ?? status };
  // The wire's message says why on its own: for a failure, the notice that told the user.
  const notice = replies.find((r) => r.kind === 'notice')?.text;
  const wireError =
    error && (status === 'failed' || status === 'refused') && notice ? { ...error, message: notice } : error;
  if (json)
    process.stdout.write(
      JSON.stringify({
        ok,
        ...(wireError ? { error: wireError } : {}),
        result: { status, replies: replies.map(view), backlog: backlog.map(view) },
      }) + '\n',
    );
  else for (const r of replies) process.stdout.write(shown(r) + '\n');
  if (error) process.stderr.write(`polyclaw: ${forTerminal(error.message)}\n`);
  await ackShown(client, platformId, [...seen]);
  return ok ? 0 : 1;
}

/**
 * Tell the host these replies and edits were shown, so they are not kept for the next chat. If
 * it cannot hear it now, they are shown again then: at least once, never lost.
 */
async function ackShown(
  client: AdminClient,
  platformId: string,
  keys: string[],
  report: () => boolean = () => true,
): Promise<void> {
  try {
    // In batches: a long backlog's keys in one request would pass the host's limit per request
    // (and its line length), be refused whole, and be shown again on every run.
    for (let i = 0; i < keys.length; i += ACK_BATCH)
      await client.request('chat.ack', { platformId, keys: keys.slice(i, i + ACK_BATCH) });
  } catch (err) {
    // Interactive chat has already said the host went away.
    if (report())
      process.stderr.write(
        `polyclaw: could not confirm what was shown (${forTerminal((err as Error).message)}); it is shown again next time\n`,
      );
  }
}

/**
 * A reply as a person sees it: an edit (from the mailbox) says so, and its files are named (the
 * paths come from the sandbox's outbox: escape sequences are dropped from them too).
 */
function shown(r: Reply): string {
  const files = r.files?.length ? `[files: ${r.files.map(forTerminal).join(', ')}]` : '';
  const text = [forTerminal(r.text), files].filter(Boolean).join('\n');
  return (r.kind === 'edit' ? '(edited) ' : '') + text;
}

function tooLong(text: string): string | null {
  return text.length > MAX_CHAT_TEXT
    ? `message is ${text.length} characters long; at most ${MAX_CHAT_TEXT}`
    : null;
}

function sender() {
  const u = os.userInfo().username || 'local';
  return { id: u, name: u };
}

async function interactive(client: AdminClient, platformId: string): Promise<number> {
  const seen = new Set<string>();
  const open = new Set<string>();
  let drained: (() => void) | null = null;
  let rl: readline.Interface | null = null;
  client.onEvent((ev) => {
    if (ev.event === 'message') {
      const r = ev as unknown as Reply;
      if (seen.has(r.key)) return;
      seen.add(r.key);
      process.stdout.write(`${FRESH_LINE}${platformId}> ${r.backlog ? '(earlier) ' : ''}${shown(r)}\n`);
      rl?.prompt(true);
      void ackShown(client, platformId, [r.key], () => !hostGone && !leaving);
    } else if (ev.event === 'edit') {
      const key = String(ev.key);
      if (seen.has(key)) return;
      seen.add(key);
      process.stdout.write(`${FRESH_LINE}${platformId}> (edited) ${forTerminal(String(ev.text))}\n`);
      rl?.prompt(true);
      void ackShown(client, platformId, [key], () => !hostGone && !leaving);
    } else if (ev.event === 'settled' && open.delete(ev.messageId as string)) {
      if (ev.status === 'failed') failed = true; // the notice above said why; the exit status says so
      if (open.size === 0) drained?.();
    }
  });
  let hostGone = false;
  let leaving = false;
  let failed = false; // a line refused, or a message that failed: the exit status says so
  client.onClose(() => {
    if (leaving) return;
    hostGone = true;
    process.stderr.write('\npolyclaw: the host went away\n');
    rl?.close();
    drained?.();
  });
  await client.request('chat.attach', { platformId });
  process.stdout.write(`Chatting with "${platformId}". Type /quit to leave.\n`);
  // Created after attach so no typed (or piped) line can arrive before we listen for it.
  rl = readline.createInterface({ input: process.stdin, output: process.stdout, prompt: 'you> ' });
  let quit = false;
  await new Promise<void>((resolve) => {
    rl!.on('line', (line) => {
      const text = line.trim();
      if (text === '/quit' || text === '/exit') {
        quit = true;
        rl!.close();
        return;
      }
      const long = tooLong(text);
      if (long) {
        // Refused here, the line alone: sent, it would cost the connection and the lines after it.
        failed = true;
        process.stderr.write(`polyclaw: ${long}; not sent\n`);
      } else if (text) {
        const pmid = randomUUID();
        open.add(pmid);
        client.request('chat.send', { platformId, text, sender: sender(), platformMessageId: pmid }).then(
          (r) => {
            const accepted = (r as { accepted: Array<{ engaged: boolean; refused?: boolean }> }).accepted;
            // Refused (the reply above says why): the exit status says so, as with -m.
            if (accepted.length > 0 && accepted.every((a) => a.refused)) failed = true;
            if (!accepted.some((a) => a.engaged) && open.delete(pmid) && open.size === 0) drained?.();
          },
          (err: Error) => {
            failed = true;
            process.stderr.write(`polyclaw: ${err.message}\n`);
            if (open.delete(pmid) && open.size === 0) drained?.();
          },
        );
      }
      rl!.prompt();
    });
    rl!.on('close', () => resolve());
    // Ctrl-C leaves, as /quit does (replies still to come are kept for the next chat).
    rl!.on('SIGINT', () => {
      quit = true;
      process.stdout.write('\n');
      rl!.close();
    });
    rl!.prompt();
  });
  // Input ended without /quit (a pipe): wait for the answers to what was sent, within reason.
  if (!quit && !hostGone && open.size > 0) {
    await Promise.race([
      new Promise<void>((r) => (drained = r)),
      new Promise((r) => setTimeout(r, PIPED_WAIT_MS).unref()),
    ]);
    if (open.size > 0 && !hostGone) {
      failed = true;
      process.stderr.write(
        `polyclaw: ${open.size} message${open.size === 1 ? '' : 's'} not answered within ${PIPED_WAIT_MS / 1000}s (they stay queued)\n`,
      );
    }
  }
  leaving = true;
  process.stdin.destroy(); // /quit with stdin still open must not keep the process alive
  return hostGone || failed ? 1 : 0;
}
