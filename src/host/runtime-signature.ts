/**
 * The group settings a running sandbox was built from: the runner creates its agent provider
 * (provider, model, effort, endpoint, approval) and the host builds the sandbox (skills, MCP
 * servers, packages, mounts, the TZ of its shell clock) once, at start. Any change to them
 * needs a new sandbox. The exceptions are read by the runner from session metadata on every
 * query, so changing them keeps a warm agent warm. New GroupSettings fields count as runtime
 * settings by default. The timezone is not an exception: the prompt reads it live, but the
 * agent's shell (`date`, scripts) keeps the TZ it started with until the sandbox is replaced.
 */
import { GroupSettings } from './store/groups.js';

const LIVE: ReadonlySet<string> = new Set<keyof GroupSettings>(['assistantName']);
const FIELDS = (Object.keys(GroupSettings.shape) as Array<keyof GroupSettings>)
  .filter((k) => !LIVE.has(k))
  .sort();

/** Equal signatures: a sandbox started with one serves the other unchanged. */
export function runtimeSignature(settings: GroupSettings): string {
  return JSON.stringify(FIELDS.map((k) => [k, settings[k] ?? null]));
}
