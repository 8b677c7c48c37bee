/**
 * Page cursors: the sort key of the last row of a page, AUTHENTICATED so a client cannot craft
 * one, and VALIDATED against the sort columns' types before any of it reaches SQL (issue 20: a
 * forged cursor of the right shape used to reach PostgreSQL and come back as a 500 carrying the
 * driver's text).
 *
 * Format: base64url of `version (1 byte) | tag (16 bytes) | body`, where
 *  - body is the JSON array of the sort-key values (bytes as {"b": base64}) — it carries no shard
 *    state, so a cursor stays valid across shard counts and processes;
 *  - tag is the first 16 bytes of HMAC-SHA256(secret, scope | 0x00 | body), and scope names what
 *    the cursor pages through (`<physical table>/<index>`, empty index = the primary key), so a
 *    cursor of another table or index does not authenticate either.
 * The secret is the store's (`cursorSecret`, else one the store created and keeps in shard s0's
 * metadata, so every node of a store agrees). One HMAC per page: one to issue a cursor, one to
 * check it. Every failure is PP_ERR_VALIDATION with field `cursor` and a message that says what is
 * wrong; nothing of the driver ever shows.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { invariant, ppError } from '../errors/index.js';
import type { ColumnType, SqlValue } from './schema.js';

/** Bound on a cursor's length, checked before anything else (it is client input). */
export const CURSOR_CHARS_MAX = 8192;
/** Shortest accepted `cursorSecret`, in bytes. */
export const CURSOR_SECRET_BYTES_MIN = 16;
/** Longest accepted `cursorSecret`, in bytes. */
export const CURSOR_SECRET_BYTES_MAX = 1024;

const VERSION = 1;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + TAG_BYTES;
const SEPARATOR = Buffer.from([0]);

/** One sort column as a cursor carries it. */
export interface CursorColumn {
  readonly name: string;
  readonly type: Exclude<ColumnType, 'json'>;
  /** Bound on a string's UTF-8 bytes / a Uint8Array's length (primary-key columns: keyBytesMax). */
  readonly bytesMax: number | undefined;
}

/** What one query shape pages through: the scope the tag covers and the columns it carries. */
export interface CursorShape {
  readonly scope: Buffer;
  readonly columns: readonly CursorColumn[];
}

export function cursorShape(physical: string, index: string, columns: readonly CursorColumn[]): CursorShape {
  return Object.freeze({ scope: Buffer.from(`${physical}/${index}`), columns: Object.freeze(columns.slice()) });
}

function invalid(message: string): never {
  throw ppError('PP_ERR_VALIDATION', { field: 'cursor', message: `cursor: ${message}` });
}

interface WellFormed {
  isWellFormed(): boolean;
}

/** The store's cursor signer; the key is set once the store has opened (see Store.open). */
export class CursorCodec {
  #key: Buffer | undefined;

  setKey(key: Buffer): void {
    invariant(key.byteLength >= CURSOR_SECRET_BYTES_MIN, 'a cursor key has at least 16 bytes');
    this.#key = key;
  }

  #tag(shape: CursorShape, body: Buffer): Buffer {
    const key = this.#key;
    invariant(key !== undefined, 'cursors are used only after the store opened');
    return createHmac('sha256', key).update(shape.scope).update(SEPARATOR).update(body).digest().subarray(0, TAG_BYTES);
  }

  encode(shape: CursorShape, values: readonly SqlValue[]): string {
    const body = Buffer.from(JSON.stringify(values.map((v) => (Buffer.isBuffer(v) ? { b: v.toString('base64') } : v))));
    const out = Buffer.allocUnsafe(HEADER_BYTES + body.byteLength);
    out[0] = VERSION;
    this.#tag(shape, body).copy(out, 1);
    body.copy(out, HEADER_BYTES);
    return out.toString('base64url');
  }

  /** The sort key a cursor carries, authenticated and checked against `shape`'s column types. */
  decode(shape: CursorShape, cursor: unknown): SqlValue[] {
    if (typeof cursor !== 'string' || cursor.length === 0) invalid('must be a non-empty string');
    if (cursor.length > CURSOR_CHARS_MAX) invalid(`longer than ${CURSOR_CHARS_MAX} characters`);
    const raw = Buffer.from(cursor, 'base64url');
    // Node's decoder skips characters outside the alphabet: only the canonical form is accepted.
    if (raw.toString('base64url') !== cursor) invalid('not base64url');
    if (raw.byteLength <= HEADER_BYTES || raw[0] !== VERSION) invalid('malformed (unknown version or truncated)');
    const body = raw.subarray(HEADER_BYTES);
    if (!timingSafeEqual(raw.subarray(1, HEADER_BYTES), this.#tag(shape, body))) {
      invalid('not issued by this store for this table and index (tampered, truncated or from another query)');
    }
    // Authenticated: the body is one this store wrote. It is checked all the same, so a leaked or
    // weak secret still cannot put a value the column cannot hold in front of SQL.
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      invalid('malformed body');
    }
    const cols = shape.columns;
    if (!Array.isArray(parsed) || parsed.length !== cols.length) invalid(`must carry ${cols.length} sort-key values`);
    const out = new Array<SqlValue>(cols.length);
    for (let i = 0; i < cols.length; i++) out[i] = checkValue(cols[i]!, (parsed as unknown[])[i], i);
    return out;
  }
}

function checkValue(col: CursorColumn, v: unknown, i: number): SqlValue {
  const at = `sort-key value ${i} (${col.name})`;
  switch (col.type) {
    case 'string': {
      if (typeof v !== 'string') invalid(`${at} must be a string`);
      if (v.includes('\0')) invalid(`${at} contains NUL`);
      if (!(v as unknown as WellFormed).isWellFormed()) invalid(`${at} contains a lone surrogate`);
      if (col.bytesMax !== undefined && v.length > col.bytesMax / 3 && Buffer.byteLength(v) > col.bytesMax) invalid(`${at} is longer than ${col.bytesMax} bytes`);
      return v;
    }
    case 'integer':
      if (typeof v !== 'number' || !Number.isSafeInteger(v)) invalid(`${at} must be a safe integer`);
      return v;
    case 'boolean':
      if (v !== 0 && v !== 1) invalid(`${at} must be 0 or 1`);
      return v;
    case 'number':
      if (typeof v !== 'number' || !Number.isFinite(v)) invalid(`${at} must be a finite number`);
      return v;
    case 'bytes': {
      const b = typeof v === 'object' && v !== null ? (v as { b?: unknown }).b : undefined;
      if (typeof b !== 'string') invalid(`${at} must be {"b": base64}`);
      const buf = Buffer.from(b, 'base64');
      if (buf.toString('base64') !== b) invalid(`${at} is not canonical base64`);
      if (col.bytesMax !== undefined && buf.byteLength > col.bytesMax) invalid(`${at} is longer than ${col.bytesMax} bytes`);
      return buf;
    }
  }
}
