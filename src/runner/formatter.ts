/**
 * Formats queued messages into the prompt an agent sees: a context header with the timezone
 * and current time, then one XML element per message with seq id, sender, local time and
 * reply context. Text is XML-escaped so a message cannot forge structure.
 */
import { localWallTime } from '../shared/wall-time.js';
import type { PendingMessage } from './session-io.js';

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export function unescapeXml(s: string): string {
  return s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, '&');
}

export function formatMessages(messages: PendingMessage[], timezone: string, now: number): string {
  const lines = [`<context timezone="${escapeXml(timezone)}" now="${localWallTime(now, timezone)}" />`];
  for (const m of messages) {
    const attrs = [`seq="${m.seq}"`];
    if (m.kind !== 'chat') attrs.push(`kind="${escapeXml(m.kind)}"`);
    const sender = m.content.sender;
    if (sender) attrs.push(`from="${escapeXml(sender.name ?? sender.id)}"`);
    attrs.push(`time="${localWallTime(m.timestamp, timezone)}"`);
    if (m.content.replyTo?.seq !== undefined) attrs.push(`reply-to="${m.content.replyTo.seq}"`);
    let body = escapeXml(m.content.text);
    if (m.content.replyTo?.text) body = `<quote>${escapeXml(m.content.replyTo.text)}</quote>\n${body}`;
    for (const a of m.content.attachments)
      body += `\n<attachment name="${escapeXml(a.name)}" path="/workspace/session/${escapeXml(a.path)}" />`;
    lines.push(`<message ${attrs.join(' ')}>${body}</message>`);
  }
  return lines.join('\n');
}

/** Text between <internal> tags is the agent's private reasoning: never delivered. */
export function stripInternal(text: string): string {
  return text.replace(/<internal>[\s\S]*?(<\/internal>|$)/g, '').trim();
}

export function systemContext(opts: {
  assistantName: string;
  timezone: string;
  destinations: string[];
}): string {
  return [
    `You are ${opts.assistantName}, a personal assistant reached through chat.`,
    `Times are in ${opts.timezone}. Messages arrive as <message seq=… from=… time=…> elements; seq ids name messages for edits and reactions.`,
    `Your final text of a turn is sent to the chat the message came from. Wrap private notes in <internal>…</internal>: they are never delivered.`,
    opts.destinations.length ? `You may also address: ${opts.destinations.join(', ')}.` : '',
  ]
    .filter(Boolean)
    .join('\n');
}
