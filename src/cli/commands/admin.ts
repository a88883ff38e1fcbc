/** `polyclaw groups|wirings|sessions …`: thin argument mapping onto admin ops. */
import { checkShape, parse, type Shape } from '../args.js';
import { adminCall } from '../admin-call.js';
import { HelpRequested, printResult, UsageError } from '../output.js';

const GROUP_OPTS = {
  provider: { type: 'string' },
  model: { type: 'string' },
  effort: { type: 'string' },
  endpoint: { type: 'string' },
  approval: { type: 'string' },
  'assistant-name': { type: 'string' },
  timezone: { type: 'string' },
} as const;

const WIRING_OPTS = {
  group: { type: 'string' },
  channel: { type: 'string' },
  'platform-id': { type: 'string' },
  engage: { type: 'string' },
  pattern: { type: 'string' },
  session: { type: 'string' },
  scope: { type: 'string' },
  ignored: { type: 'string' },
} as const;

const USAGE: Record<string, string> = {
  groups:
    'polyclaw groups create NAME --provider mock|claude|codex|opencode [--model M] [--effort E] [--endpoint SECRET] [--approval bypass|ask|deny] | list | show NAME | update NAME [...] (an empty --model/--effort/--endpoint/--timezone "" clears it) | delete NAME [--force]',
  wirings:
    'polyclaw wirings list | add --group G --channel C --platform-id ID [--engage pattern|mention|mention-sticky] [--pattern RE (default .*: every message)] [--session shared|per-thread|agent-shared] [--scope all|members|admins] [--ignored drop|accumulate] | update ID [...] | remove ID',
  sessions: 'polyclaw sessions list [--group G] | show ID | reset ID',
  destinations:
    'polyclaw destinations list | add --group G --name N (--agent GROUP | --channel C --platform-id ID [--thread T]) | remove --group G --name N',
};

/** An empty value of an optional setting clears it (back to the provider's or host's default). */
const orDefault = (x: unknown) => (x === '' ? null : x);

function groupFields(v: Record<string, unknown>) {
  return {
    provider: v.provider,
    model: orDefault(v.model),
    effort: orDefault(v.effort),
    endpoint: orDefault(v.endpoint),
    approval: v.approval,
    assistantName: v['assistant-name'],
    timezone: orDefault(v.timezone),
  };
}

function need(pos: string[], i: number, what: string, usage: string): string {
  const v = pos[i];
  if (!v) throw new UsageError(`missing ${what} — usage: ${usage}`);
  return v;
}

const DEST_OPTS = {
  group: { type: 'string' },
  name: { type: 'string' },
  agent: { type: 'string' },
  channel: { type: 'string' },
  'platform-id': { type: 'string' },
  thread: { type: 'string' },
} as const;

const GROUP_FLAGS = Object.keys(GROUP_OPTS);
const WIRING_STYLE = ['engage', 'pattern', 'session', 'scope', 'ignored'];

/** Each verb's positionals (the verb included) and flags; see checkShape. */
const SHAPES: Record<keyof typeof OPTS, Record<string, Shape>> = {
  groups: {
    list: [1, []],
    create: [2, GROUP_FLAGS],
    show: [2, []],
    delete: [2, ['force']],
    update: [2, GROUP_FLAGS],
  },
  wirings: {
    list: [1, []],
    add: [1, Object.keys(WIRING_OPTS)],
    update: [2, [...WIRING_STYLE, 'group', 'channel', 'platform-id']],
    remove: [2, []],
  },
  destinations: { list: [1, []], add: [1, Object.keys(DEST_OPTS)], remove: [1, ['group', 'name']] },
  sessions: { list: [1, ['group']], show: [2, []], reset: [2, []] },
};

const OPTS = {
  groups: { ...GROUP_OPTS, force: { type: 'boolean' } as const },
  wirings: WIRING_OPTS,
  destinations: DEST_OPTS,
  sessions: { group: { type: 'string' } as const },
};

export async function adminCommand(noun: keyof typeof OPTS, argv: string[]): Promise<void> {
  const usage = USAGE[noun]!;
  const opts = OPTS[noun];
  const { values: v, positionals: pos } = parse(argv, opts, usage);
  const json = v.json === true;
  const verb = pos[0];
  if (v.help) throw new HelpRequested(usage);
  if (!verb) throw new UsageError(`usage: ${usage}`);
  const shape = SHAPES[noun][verb];
  if (!shape) throw new UsageError(`unknown ${noun} command "${verb}" — usage: ${usage}`);
  checkShape(`${noun} ${verb}`, { values: v, positionals: pos }, shape, usage);
  let op: string;
  let args: Record<string, unknown>;
  const vals = v as Record<string, unknown>;
  if (noun === 'groups') {
    if (verb === 'list') [op, args] = ['groups.list', {}];
    else if (verb === 'create') {
      if (!vals.provider) throw new UsageError(`groups create needs --provider — usage: ${usage}`);
      [op, args] = ['groups.create', { name: need(pos, 1, 'group NAME', usage), ...groupFields(vals) }];
    } else if (verb === 'show' || verb === 'delete')
      [op, args] = [`groups.${verb}`, { name: need(pos, 1, 'group NAME', usage), force: vals.force }];
    else if (verb === 'update')
      [op, args] = ['groups.update', { name: need(pos, 1, 'group NAME', usage), ...groupFields(vals) }];
    else throw new UsageError(`unknown groups command "${verb}" — usage: ${usage}`);
  } else if (noun === 'wirings') {
    const w = {
      engage: vals.engage,
      pattern: vals.pattern,
      session: vals.session,
      scope: vals.scope,
      ignored: vals.ignored,
    };
    if (verb === 'list') [op, args] = ['wirings.list', {}];
    else if (verb === 'add')
      [op, args] = [
        'wirings.add',
        { group: vals.group, channel: vals.channel, platformId: vals['platform-id'], ...w },
      ];
    else if (verb === 'update') {
      // A wiring joins one group to one chat: moving it is remove + add, not an update.
      for (const f of ['group', 'channel', 'platform-id'])
        if (vals[f] !== undefined)
          throw new UsageError(`wirings update cannot change --${f}: remove the wiring and add a new one`);
      [op, args] = ['wirings.update', { id: need(pos, 1, 'wiring ID', usage), ...w }];
    } else if (verb === 'remove') [op, args] = ['wirings.remove', { id: need(pos, 1, 'wiring ID', usage) }];
    else throw new UsageError(`unknown wirings command "${verb}" — usage: ${usage}`);
  } else if (noun === 'destinations') {
    const d = {
      group: vals.group,
      name: vals.name,
      agent: vals.agent,
      channel: vals.channel,
      platformId: vals['platform-id'],
      threadId: vals.thread,
    };
    if (verb === 'list') [op, args] = ['destinations.list', {}];
    else if (verb === 'add') [op, args] = ['destinations.add', d];
    else if (verb === 'remove') [op, args] = ['destinations.remove', { group: vals.group, name: vals.name }];
    else throw new UsageError(`unknown destinations command "${verb}" — usage: ${usage}`);
  } else {
    if (verb === 'list') [op, args] = ['sessions.list', { group: vals.group }];
    else if (verb === 'show' || verb === 'reset')
      [op, args] = [`sessions.${verb}`, { id: need(pos, 1, 'session ID', usage) }];
    else throw new UsageError(`unknown sessions command "${verb}" — usage: ${usage}`);
  }
  const clean = Object.fromEntries(Object.entries(args).filter(([, x]) => x !== undefined));
  printResult(await adminCall(op, clean), json);
}
