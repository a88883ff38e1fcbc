/**
 * The gateway seam (ARCHITECTURE §5): what the host hands the gateway and what the gateway
 * offers back. The gateway never learns where secrets are stored; it asks a SecretSource per
 * request. A sandbox only ever holds a GatewayTicket — a random per-sandbox token and loopback
 * URLs — never a secret value.
 */
import type net from 'node:net';
import type { Logger } from '../shared/log.js';

export const SECRET_KINDS = ['anthropic', 'openai', 'openai-compatible', 'codex-chatgpt'] as const;
export type SecretKind = (typeof SECRET_KINDS)[number];

/** Route prefixes; `/endpoints/<secret name>/…` reaches one named secret of any kind. */
export const ROUTE_KIND: Record<'anthropic' | 'openai' | 'chatgpt', SecretKind> = {
  anthropic: 'anthropic',
  openai: 'openai',
  chatgpt: 'codex-chatgpt',
};

/** Public upstreams; a secret's own base URL or config overrides them. */
export const DEFAULT_UPSTREAMS: Record<SecretKind, string | null> = {
  anthropic: 'https://api.anthropic.com',
  openai: 'https://api.openai.com',
  'openai-compatible': null,
  'codex-chatgpt': 'https://chatgpt.com/backend-api/codex',
};

/** Who is calling: resolved from the per-sandbox token. */
export interface Caller {
  groupId: string;
  groupName: string;
  sandboxId: string;
}

/** A secret opened for one request. `value` must only ever go into an upstream request header. */
export interface OpenedSecret {
  id: string;
  name: string;
  kind: SecretKind;
  baseUrl: string | null;
  value: string;
}

export type SecretLookup = { ok: true; secret: OpenedSecret } | { ok: false; reason: 'none' | 'not_granted' };

export interface SecretSource {
  /**
   * The secret the caller's group uses for a route kind: its group's `--endpoint` secret when
   * that has the kind, else the first granted one by name.
   */
  forKind(caller: Caller, kind: SecretKind): SecretLookup;
  /** A named secret, if it exists and the caller's group holds a grant for it. */
  byName(caller: Caller, name: string): SecretLookup;
  /** Record use (last used, last status); never throws into the request path. */
  markUsed(secretId: string, status: number): void;
  /** Replace a secret's value (the ChatGPT refresher stores rotated tokens). */
  replaceValue(secretId: string, value: string): void;
}

export interface GroupPolicy {
  /** CONNECT targets: exact host names, or `*.example.com` for subdomains. Empty = none. */
  allowHosts: string[];
  /** Requests allowed per hour (fixed window from the first request, in memory); null = unlimited. */
  requestsPerHour: number | null;
}

export interface AuditEntry {
  group: string;
  route: string;
  method: string;
  status: number;
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
  error?: string;
}

export type Resolver = (host: string) => Promise<string>;
export type Connector = (ip: string, port: number) => net.Socket;

export interface GatewayDeps {
  secrets: SecretSource;
  /** Per-group policy (egress allowlist, budget); groups not listed get the default. */
  policy(groupName: string): GroupPolicy;
  log: Logger;
  /** Upstream base URL overrides per kind (tests point these at fake servers). */
  upstreams?: Partial<Record<SecretKind, string>>;
  /** Token endpoint for the ChatGPT refresh-token swap. */
  chatgptTokenUrl?: string;
  resolve?: Resolver;
  connect?: Connector;
  /**
   * Let CONNECT reach loopback/private addresses. Off by default: an allowlisted name that
   * resolves to 127.0.0.1 would otherwise open the host's own services to the sandbox.
   */
  allowPrivateEgress?: boolean;
  now?: () => number;
  fetch?: typeof fetch;
  audit?: (entry: AuditEntry) => void;
  /** Header block limit in bytes (Node's default is 16 KiB). */
  maxHeaderBytes?: number;
  /** A client that sends nothing for this long is dropped. */
  idleTimeoutMs?: number;
  /**
   * Open connections per listener (default 1024); more are refused at once. Every sandbox can
   * reach the gateway: one that opens connections without end must not use up the host's files.
   */
  maxConnections?: number;
  /**
   * Requests and tunnels one sandbox may have open at once (default 128); more are answered
   * 429, so one sandbox cannot hold every connection the listeners take.
   */
  maxPerSandbox?: number;
}

/** What a sandbox is given to reach the gateway. */
export interface GatewayTicket {
  token: string;
  /** Host directory holding only the gateway socket (bind-mounted into isolating sandboxes). */
  socketDir: string;
  socketName: string;
  /** Loopback TCP port of the host listener (for non-isolating runtimes). */
  tcpPort: number | null;
  /** Kind of the group's --endpoint secret when it is granted (e.g. codex-chatgpt), else null. */
  endpointKind: SecretKind | null;
  /** Release the token (the sandbox exited). */
  revoke(): void;
}

/** The host-side handle the sandbox builder uses. */
export interface SandboxGatewayAccess {
  issue(caller: Omit<Caller, 'sandboxId'>, sandboxId: string, endpoint?: string | null): GatewayTicket;
}

/** Port the in-sandbox forwarder listens on (each sandbox has its own loopback). */
export const SANDBOX_GATEWAY_PORT = 7878;
export const SANDBOX_GATEWAY_DIR = '/run/polyclaw';
