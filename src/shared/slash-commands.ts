/**
 * Native agent slash commands (ARCHITECTURE §3: providers with nativeSlashCommands pass them to
 * their agent). They act on the agent's session itself (compacting it, reporting its context
 * and cost), so only an admin may send them: the host's command gate refuses them from anyone
 * else before they are queued, and the runner passes them through verbatim. `/clear` is not
 * one of them: the runner handles it for every provider and every sender.
 */
export const NATIVE_SLASH_COMMANDS = ['compact', 'context', 'cost'] as const;
export type NativeSlashCommand = (typeof NATIVE_SLASH_COMMANDS)[number];

/** The command a message consists of (`/compact keep the todo list` → 'compact'), or null. */
export function nativeSlashCommand(text: string): NativeSlashCommand | null {
  const m = /^\/([a-z]+)(?:\s|$)/.exec(text.trim());
  const name = m?.[1];
  return (NATIVE_SLASH_COMMANDS as readonly string[]).includes(name ?? '')
    ? (name as NativeSlashCommand)
    : null;
}

export function slashCommandRefusal(command: string): string {
  return `/${command} acts on the assistant's own session, so only an admin of this group may use it.`;
}
