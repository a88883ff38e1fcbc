/**
 * Where a gateway request goes: the first path segment picks the secret (`/anthropic`,
 * `/openai`, `/chatgpt` by kind; `/endpoints/NAME` by name) and the rest of the path is put
 * after the secret's base URL. Invariants:
 *  - the rest of the path can never leave the base URL's path. URL resolution turns `..`
 *    (raw or as %2e) into "one level up", and treats a backslash like a slash, so
 *    `/chatgpt/../../backend-api/me` would reach another ChatGPT API carrying the real token.
 *    A path with a `.` or `..` segment, a backslash, an encoded slash or backslash, or a
 *    control character is refused (400) before any secret is opened;
 *  - as a second line of defence, the final upstream URL must still lie under the base URL's path;
 *  - only the route table's own entries match: `/constructor/x` is no route.
 */
import {
  ROUTE_KIND,
  type Caller,
  type SecretKind,
  type SecretLookup,
  type SecretSource,
} from './contract.js';

export interface Route {
  ok: true;
  route: string;
  lookup: SecretLookup;
  /** Path and query to put after the base URL. */
  rest: string;
  /** The secret, as error messages name it. */
  what: string;
}

export type RouteResult = Route | { ok: false; status: 400 | 404; message: string };

const ROUTES = 'routes: /anthropic, /openai, /chatgpt, /endpoints/NAME';

/** Why a path may not be put after a base URL, or null when it may. */
export function unsafePath(path: string): string | null {
  if (/[\\\s\p{Cc}]/u.test(path)) return 'a backslash, a space or a control character';
  if (/%(2f|5c)/i.test(path)) return 'an encoded slash or backslash';
  for (const segment of path.split('/')) {
    const s = segment.replace(/%2e/gi, '.');
    if (s === '.' || s === '..') return 'a "." or ".." segment';
  }
  return null;
}

/** `base` + `rest` as a URL, or null if it would not lie under the base URL's path. */
export function upstreamUrl(base: string, rest: string): URL | null {
  const root = new URL(base).pathname.replace(/\/$/, '');
  const target = new URL(base.replace(/\/$/, '') + rest);
  const p = target.pathname;
  return p === root || p.startsWith(root + '/') ? target : null;
}

/** Split `/route/rest?query` into the route, the secret lookup and the upstream path. */
export function resolveRoute(secrets: SecretSource, caller: Caller, url: string): RouteResult {
  const notFound = {
    ok: false,
    status: 404,
    message: `no gateway route for ${url.split('?')[0]} (${ROUTES})`,
  } as const;
  const m = /^\/([a-z-]+)(\/[^?]*)?(\?.*)?$/.exec(url);
  if (!m) return notFound;
  const [, first = '', restPath = '/', query = ''] = m;
  const kind: SecretKind | undefined = Object.hasOwn(ROUTE_KIND, first)
    ? ROUTE_KIND[first as keyof typeof ROUTE_KIND]
    : undefined;
  if (!kind && first !== 'endpoints') return notFound;
  const unsafe = unsafePath(restPath);
  if (unsafe) return { ok: false, status: 400, message: `the path after /${first} has ${unsafe}` };
  if (kind)
    return {
      ok: true,
      route: first,
      lookup: secrets.forKind(caller, kind),
      rest: restPath + query,
      what: `any ${kind} secret`,
    };
  const e = /^\/([a-z0-9][a-z0-9_.-]{0,62})(\/.*)?$/.exec(restPath);
  if (!e) return notFound;
  const name = e[1]!;
  return {
    ok: true,
    route: `endpoints/${name}`,
    lookup: secrets.byName(caller, name),
    rest: (e[2] ?? '/') + query,
    what: `the secret "${name}"`,
  };
}
