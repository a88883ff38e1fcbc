/** JSON another process wrote (a sandbox, an older host): unreadable text is undefined, for a schema to refuse. */
export function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}
