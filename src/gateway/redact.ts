/**
 * Redaction of the `/status` document for callers who are not admins (GatewayOptions.statusAccess).
 *
 * The document says where the data lives: shard files (`sqlite:/srv/shop/store/shard-0.db`),
 * database URLs (`postgres://app@10.0.3.7:5432/shop?schema=shop_0`), queue directories. To anyone
 * else that is a map of the servers. Every STRING VALUE that is a whole URL or a whole filesystem
 * path is rewritten, wherever it sits (the node's part and the application's sections alike, so a section
 * the gateway has never heard of is covered too):
 *
 *   URL   scheme kept, user, password, host, port and path replaced by `…`, the query kept minus
 *         parameters whose names look secret (pass, secret, token, key, auth, cred):
 *         `postgres://…?schema=shop_0` (the schema names the shard; nothing says where it is)
 *   path  a `scheme:` prefix and the last segment kept: `sqlite:…/shard-0.db`
 *
 * Keys, numbers and other strings (node ids, service and action names, states) are left alone.
 */

const URL_RE = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/[^?#]*(\?[^#]*)?(#.*)?$/;
const PATH_RE = /^([A-Za-z][A-Za-z0-9+.-]*:)?(?:\.{0,2}\/|~\/|[A-Za-z]:\\)/;
const SECRET_PARAM_RE = /pass|secret|token|key|auth|cred/i;
/** Deeper than any status document; a guard against a section that nests without end. */
const DEPTH_MAX = 32;

/** One string, redacted if it is a URL or a path (see the file header); anything else as it is. */
export function redactLocation(s: string): string {
  const url = URL_RE.exec(s);
  if (url !== null) {
    const kept = (url[2] ?? '').slice(1).split('&').filter((kv) => kv !== '' && !SECRET_PARAM_RE.test(kv.split('=')[0] ?? ''));
    return `${url[1] as string}://…${kept.length === 0 ? '' : `?${kept.join('&')}`}`;
  }
  const path = PATH_RE.exec(s);
  if (path !== null) {
    const last = s.slice(Math.max(s.lastIndexOf('/'), s.lastIndexOf('\\')) + 1);
    return `${path[1] ?? ''}…/${last}`;
  }
  return s;
}

/** A copy of a JSON-like value with every location string redacted (see the file header). */
export function redactLocations<T>(value: T): T {
  return walk(value, 0) as T;
}

function walk(v: unknown, depth: number): unknown {
  if (typeof v === 'string') return redactLocation(v);
  if (typeof v !== 'object' || v === null) return v;
  if (depth >= DEPTH_MAX) return '…';
  const toJSON = (v as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') return walk(toJSON.call(v), depth + 1); // a Date, as JSON.stringify would send it
  if (Array.isArray(v)) return v.map((x) => walk(x, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[k] = walk(x, depth + 1);
  return out;
}
