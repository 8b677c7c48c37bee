/**
 * Passwords and session tokens (CONTRACT.md, "HTTP conventions"), on node:crypto only — no
 * platform imports, so the handwritten peer uses the very same code and the comparison is fair.
 *
 * Token = base64url(JSON payload) + "." + base64url(HMAC-SHA256(secret, payload part)), payload
 * `{"uid","role","exp"}` (exp in epoch seconds). Verifying is one HMAC over the short payload part,
 * a constant-time compare with the signature's canonical spelling (43 characters of the base64url
 * alphabet, no padding), then one JSON.parse of at most TOKEN_CHARS_MAX characters.
 * Passwords: scrypt N=16384 r=8 p=1, 32-byte key, 16-byte salt, `scrypt$<salt>$<hash>` (base64url),
 * hashed on libuv's thread pool (async) so many can run in parallel without blocking the loop.
 */
import { createHmac, createSecretKey, randomBytes, scrypt, timingSafeEqual, type KeyObject } from 'node:crypto';

export const SESSION_TTL_MS = 24 * 3600 * 1000;
/** Longer tokens are rejected before any work (a real one is ~110 characters). */
export const TOKEN_CHARS_MAX = 512;
const SCRYPT = { N: 16384, r: 8, p: 1 } as const;
const KEY_BYTES = 32;
const SALT_BYTES = 16;
const USER_ID_RE = /^u[0-9a-f]{12}$/;
/** base64url of a 32-byte HMAC-SHA256, unpadded. */
const SIG_CHARS = 43;
const BASE64URL_RE = /^[A-Za-z0-9_-]+$/;

export type Role = 'user' | 'admin';

export interface TokenPayload {
  readonly uid: string;
  readonly role: Role;
  /** Expiry, epoch seconds. */
  readonly exp: number;
}

export type VerifyResult =
  | { readonly ok: true; readonly payload: TokenPayload }
  | { readonly ok: false; readonly reason: 'malformed' | 'forged' | 'expired' };

/** A reusable HMAC key (building a KeyObject once saves re-importing the secret per request). */
export function sessionKey(secret: string | Uint8Array): KeyObject {
  const bytes = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret);
  if (bytes.length < 16) throw new RangeError('session secret: at least 16 bytes');
  return createSecretKey(bytes);
}

function mac(key: KeyObject, payloadPart: string): Buffer {
  return createHmac('sha256', key).update(payloadPart).digest();
}

export function signToken(key: KeyObject, payload: TokenPayload): string {
  const part = Buffer.from(JSON.stringify({ uid: payload.uid, role: payload.role, exp: payload.exp })).toString('base64url');
  return `${part}.${mac(key, part).toString('base64url')}`;
}

/** A new session for `uid`: the token and its expiry (epoch ms, whole seconds). */
export function issueToken(key: KeyObject, uid: string, role: Role, nowMs = Date.now()): { token: string; expiresAt: number } {
  const exp = Math.floor((nowMs + SESSION_TTL_MS) / 1000);
  return { token: signToken(key, { uid, role, exp }), expiresAt: exp * 1000 };
}

/** Checks signature, shape and expiry. Never throws. */
export function verifyToken(key: KeyObject, token: string, nowMs = Date.now()): VerifyResult {
  if (typeof token !== 'string' || token.length === 0 || token.length > TOKEN_CHARS_MAX) return { ok: false, reason: 'malformed' };
  const dot = token.indexOf('.');
  if (dot <= 0 || dot !== token.lastIndexOf('.')) return { ok: false, reason: 'malformed' };
  const part = token.slice(0, dot);
  // The signature is compared as TEXT with the canonical base64url of the expected MAC: Node's
  // decoder accepts padding, a non-canonical last character (its 2 spare bits set) and skips
  // characters outside the alphabet, so comparing decoded bytes would let several spellings of
  // one signature through.
  const sig = token.slice(dot + 1);
  if (sig.length !== SIG_CHARS || !BASE64URL_RE.test(sig)) return { ok: false, reason: 'malformed' };
  if (!timingSafeEqual(Buffer.from(sig, 'latin1'), Buffer.from(mac(key, part).toString('base64url'), 'latin1'))) return { ok: false, reason: 'forged' };
  let p: unknown;
  try {
    p = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  if (typeof p !== 'object' || p === null) return { ok: false, reason: 'malformed' };
  const { uid, role, exp } = p as Record<string, unknown>;
  if (typeof uid !== 'string' || !USER_ID_RE.test(uid) || (role !== 'user' && role !== 'admin') || typeof exp !== 'number' || !Number.isFinite(exp)) {
    return { ok: false, reason: 'malformed' };
  }
  if (exp * 1000 <= nowMs) return { ok: false, reason: 'expired' };
  return { ok: true, payload: { uid, role, exp } };
}

/**
 * The token of an `Authorization: Bearer <token>` header value, or undefined. Case-insensitive
 * scheme, one space (RFC 6750 allows more; we trim).
 */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined || header.length < 8) return undefined;
  if (header.slice(0, 7).toLowerCase() !== 'bearer ') return undefined;
  const t = header.slice(7).trim();
  return t.length === 0 ? undefined : t;
}

function scryptAsync(password: string, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, KEY_BYTES, SCRYPT, (err, key) => (err === null ? resolve(key) : reject(err)));
  });
}

/** `scrypt$<salt b64url>$<hash b64url>` with a fresh 16-byte salt. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const hash = await scryptAsync(password, salt);
  return `scrypt$${salt.toString('base64url')}$${hash.toString('base64url')}`;
}

/** Whether `password` matches `stored` (constant-time compare). A malformed `stored` never matches. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 3 || parts[0] !== 'scrypt') return false;
  const salt = Buffer.from(parts[1]!, 'base64url');
  const expected = Buffer.from(parts[2]!, 'base64url');
  if (salt.length !== SALT_BYTES || expected.length !== KEY_BYTES) return false;
  const got = await scryptAsync(password, salt);
  return timingSafeEqual(got, expected);
}

/**
 * A hash no password matches in practice: sign-in for an unknown email verifies against it so the
 * answer takes as long as for a known one (no user enumeration by timing).
 */
export const DUMMY_PASSWORD_HASH = `scrypt$${Buffer.alloc(SALT_BYTES, 7).toString('base64url')}$${Buffer.alloc(KEY_BYTES, 0).toString('base64url')}`;
