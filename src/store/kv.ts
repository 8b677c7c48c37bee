/**
 * Key-value namespaces: string keys, any msgpack-encodable value, versions for compare-and-set,
 * optional TTL, batch get/put, prefix scans with cursors. A namespace is a table `kv_<ns>` with a
 * text key and a bytes value, hash-partitioned on the key, so everything (group commit, the
 * change feed, TTL sweeps) is shared with tables.
 */
import { PowerplantError, ppError, requireArg } from '../errors/index.js';
import {
  allShards,
  checkBatchSize,
  checkLimit,
  checkVersion,
  expiryOf,
  scanShards,
  submit,
  submitAcross,
  type ShardContext,
  type StoreOp,
  type WriteResult,
} from './collection.js';
import { pack, unpack } from './codec.js';
import { cursorShape, type CursorShape } from './cursor.js';
import { hasSyncReads, keyJson, type RawRow, type ScanPlan, type ShardEngine, type SyncReadEngine, type WriteOp } from './engines/base.js';
import type { Router } from './router.js';
import { checkString, illFormedPath, prefixUpperBound, type TableDef } from './schema.js';

/** Bytes that precede a lone surrogate in msgpackr's output: 0xED (its own UTF-8 loop) or U+FFFD (Buffer's). */
const MAYBE_SURROGATE = 0xed;
const REPLACEMENT_CHAR = Buffer.from('\uFFFD');

export interface KvEntry<V> {
  readonly value: V;
  readonly version: number;
  /** Epoch ms after which the entry is invisible; null = never. */
  readonly expiresAtMs: number | null;
}

export interface KvScanItem<V> extends KvEntry<V> {
  readonly key: string;
}

export interface KvPutOptions {
  /** Expected current version (compare-and-set); 0 = the key must not exist. */
  readonly version?: number;
  /** The entry expires this many ms after the write. */
  readonly ttlMs?: number;
}

export interface KvPutEntry<V> extends KvPutOptions {
  readonly key: string;
  readonly value: V;
}

export interface KvScanOptions {
  readonly prefix?: string;
  readonly limit?: number;
  readonly cursor?: string;
}

export class Kv<V = unknown> {
  readonly namespace: string;
  readonly def: TableDef;
  readonly #ctx: ShardContext;
  readonly #router: Router;
  /** Per shard: the engine if it declares synchronous reads (SQLite), to skip a promise hop. */
  readonly #sync: readonly (SyncReadEngine | undefined)[];
  readonly #engines: readonly ShardEngine[];
  /** One shard: nothing to route (no hash per call). */
  readonly #single: boolean;
  /** Scan cursors: scoped to this namespace, one string (the key, bounded by keyBytesMax). */
  readonly #cursor: CursorShape;

  constructor(ctx: ShardContext, def: TableDef, router: Router) {
    this.#ctx = ctx;
    this.def = def;
    this.namespace = def.name;
    this.#router = router;
    this.#engines = ctx.engines;
    this.#single = ctx.engines.length === 1;
    this.#sync = ctx.engines.map((e) => (hasSyncReads(e) ? e : undefined));
    this.#cursor = cursorShape(def.physical, '', [{ name: 'key', type: 'string', bytesMax: ctx.limits.keyBytesMax }]);
  }

  #checkKey(key: unknown, field = 'key'): asserts key is string {
    if (key === undefined || key === null || key === '') throw ppError('PP_ERR_MISSING_KEY', { field, message: `${field}: a non-empty string key is required` });
    if (typeof key !== 'string') throw ppError('PP_ERR_VALIDATION', { field, message: `${field}: must be a string` });
    const max = this.#ctx.limits.keyBytesMax;
    if (key.length * 3 > max && Buffer.byteLength(key) > max) {
      throw ppError('PP_ERR_TOO_LARGE', { field, message: `${field}: key exceeds keyBytesMax ${max}`, data: { max, size: Buffer.byteLength(key) } });
    }
    checkString(key, field);
  }

  #encodeValue(value: unknown, field: string): Buffer {
    if (value === undefined) throw ppError('PP_ERR_VALIDATION', { field, message: `${field}: undefined is not a value (delete the key instead)` });
    let buf: Buffer;
    try {
      buf = pack(value);
    } catch (err) {
      throw ppError('PP_ERR_VALIDATION', { field, message: `${field}: cannot be encoded (${err instanceof Error ? err.message : String(err)})` });
    }
    const max = this.#ctx.limits.valueBytesMax;
    if (buf.byteLength > max) throw ppError('PP_ERR_TOO_LARGE', { field, message: `${field}: ${buf.byteLength} bytes exceeds valueBytesMax ${max}`, data: { max, size: buf.byteLength } });
    // msgpack strings are UTF-8: a lone surrogate would come back as U+FFFD. Refused, not changed.
    // Two native byte scans of the encoded value decide whether a walk of it is needed at all.
    if (buf.indexOf(MAYBE_SURROGATE) >= 0 || buf.indexOf(REPLACEMENT_CHAR) >= 0) {
      const at = illFormedPath(value);
      if (at !== undefined) {
        const f = at === '' ? field : `${field}.${at}`;
        throw ppError('PP_ERR_VALIDATION', { field: f, message: `${f}: strings may not contain lone surrogates` });
      }
    }
    return buf;
  }

  #shardOf(key: string): number {
    return this.#single ? 0 : this.#router.shardIndexOf([key]);
  }

  #entry(raw: RawRow): KvEntry<V> {
    return { value: unpack(raw.v as Buffer) as V, version: raw._v as number, expiresAtMs: (raw._exp as number | null) ?? null };
  }

  async get(key: string): Promise<KvEntry<V> | undefined> {
    this.#ctx.checkOpen();
    this.#checkKey(key);
    const s = this.#shardOf(key);
    const sync = this.#sync[s];
    const raw = sync !== undefined ? sync.getSync(this.def, [key], Date.now()) : await this.#engines[s]!.get(this.def, [key], Date.now());
    return raw === undefined ? undefined : this.#entry(raw);
  }

  #putOp(key: string, value: unknown, options: KvPutOptions, nowMs: number, field: string): WriteOp {
    this.#checkKey(key, `${field}key`);
    const version = checkVersion(options.version);
    const v = this.#encodeValue(value, `${field}value`);
    // The change record's document is the stored value's bytes, as they are.
    const exp = expiryOf(options.ttlMs, this.#ctx.limits, nowMs);
    const k = [key];
    return { table: this.def, kind: 'upsert', key: k, values: [key, v], expiresAtMs: exp, keyJson: keyJson(k), doc: v, ...(version === undefined ? {} : { expectVersion: version }) };
  }

  /** A put or delete as a `StoreOp` (validated, not submitted), for `store.atomic` and transactions. */
  writeOp(op: { readonly op: 'put'; readonly key: string; readonly value: V; readonly version?: number; readonly ttlMs?: number } | { readonly op: 'delete'; readonly key: string; readonly version?: number }): StoreOp {
    requireArg(typeof op === 'object' && op !== null, 'op', 'must be an object');
    if (op.op === 'put') return { shard: this.#shardOf(op.key), write: this.#putOp(op.key, op.value, op, Date.now(), '') };
    requireArg(op.op === 'delete', 'op', "must be 'put' or 'delete'");
    this.#checkKey(op.key);
    const version = checkVersion(op.version);
    const k = [op.key];
    return { shard: this.#shardOf(op.key), write: { table: this.def, kind: 'delete', key: k, keyJson: keyJson(k), ...(version === undefined ? {} : { expectVersion: version }) } };
  }

  /** A condition for `store.atomic`: the entry's live version is `version` (0 = absent). */
  checkOp(key: string, version: number): StoreOp {
    this.#checkKey(key);
    requireArg(Number.isSafeInteger(version) && version >= 0, 'version', 'must be an integer >= 0');
    const k = [key];
    return { shard: this.#shardOf(key), write: { table: this.def, kind: 'check', key: k, keyJson: keyJson(k), expectVersion: version } };
  }

  /** The shard index and canonical key string of a key (validated). */
  locate(key: string): { shard: number; keyJson: string } {
    this.#checkKey(key);
    return { shard: this.#shardOf(key), keyJson: keyJson([key]) };
  }

  /** Writes the value. With `version`: compare-and-set (PP_ERR_CONFLICT on mismatch). */
  async put(key: string, value: V, options: KvPutOptions = {}): Promise<WriteResult> {
    const op = this.#putOp(key, value, options, Date.now(), '');
    const s = this.#shardOf(key);
    const [o] = await submit(this.#ctx, s, [op]);
    return { version: o!.version, shard: this.#engines[s]!.shard, position: o!.position };
  }

  /** Compare-and-set: writes only if the current version is `expectedVersion` (0 = absent). */
  cas(key: string, expectedVersion: number, value: V, options: { ttlMs?: number } = {}): Promise<WriteResult> {
    requireArg(Number.isSafeInteger(expectedVersion) && expectedVersion >= 0, 'expectedVersion', 'must be an integer >= 0');
    return this.put(key, value, { ...options, version: expectedVersion });
  }

  /** Deletes the key; resolves whether a live entry was deleted. With `version`: compare-and-delete. */
  async delete(key: string, options: { version?: number } = {}): Promise<boolean> {
    this.#checkKey(key);
    const version = checkVersion(options.version);
    const s = this.#shardOf(key);
    const k = [key];
    const [o] = await submit(this.#ctx, s, [{ table: this.def, kind: 'delete', key: k, keyJson: keyJson(k), ...(version === undefined ? {} : { expectVersion: version }) }]);
    return o!.applied;
  }

  /** Point reads of several keys; results in input order (undefined = absent). */
  async getMany(keys: readonly string[]): Promise<(KvEntry<V> | undefined)[]> {
    this.#ctx.checkOpen();
    requireArg(Array.isArray(keys), 'keys', 'must be an array');
    checkBatchSize(keys.length, this.#ctx.limits, 'keys');
    const groups = new Map<number, string[]>();
    keys.forEach((k, i) => {
      this.#checkKey(k, `keys[${i}]`);
      const s = this.#shardOf(k);
      let g = groups.get(s);
      if (g === undefined) groups.set(s, (g = []));
      g.push(k);
    });
    const found = new Map<string, KvEntry<V>>();
    const now = Date.now();
    await Promise.all(
      [...groups].map(async ([s, ks]) => {
        const unique = [...new Set(ks)];
        const rows = await this.#engines[s]!.getMany(this.def, unique.map((k) => [k]), now);
        for (const r of rows) found.set(r.k as string, this.#entry(r));
      }),
    );
    return keys.map((k) => found.get(k));
  }

  /**
   * Writes several entries. All are validated before any is written; entries on one shard commit
   * atomically together (one of them failing its `version` check fails them all); across shards
   * each shard's part is atomic on its own.
   */
  async putMany(entries: readonly KvPutEntry<V>[]): Promise<WriteResult[]> {
    requireArg(Array.isArray(entries), 'entries', 'must be an array');
    checkBatchSize(entries.length, this.#ctx.limits, 'entries');
    const now = Date.now();
    const ops: WriteOp[] = [];
    const shards: number[] = [];
    entries.forEach((e, i) => {
      requireArg(typeof e === 'object' && e !== null, `entries[${i}]`, 'must be an object');
      try {
        ops.push(this.#putOp(e.key, e.value, e, now, `entries[${i}].`));
      } catch (err) {
        if (err instanceof PowerplantError && (err.field === 'version' || err.field === 'ttlMs')) {
          throw new PowerplantError(err.code, { field: `entries[${i}].${err.field}`, message: `entries[${i}].${err.message}` });
        }
        throw err;
      }
      shards.push(this.#shardOf(e.key));
    });
    return submitAcross(this.#ctx, shards, ops);
  }

  /** Entries whose key starts with `prefix`, in key order (code point), across all shards. */
  async scan(options: KvScanOptions = {}): Promise<{ items: KvScanItem<V>[]; cursor: string | undefined }> {
    this.#ctx.checkOpen();
    const prefix = options.prefix ?? '';
    requireArg(typeof prefix === 'string', 'prefix', 'must be a string');
    checkString(prefix, 'prefix');
    const limit = checkLimit(options.limit, this.#ctx.limits.pageMax);
    const upper = prefix === '' ? undefined : prefixUpperBound(prefix);
    const range = prefix === '' ? undefined : { column: 'k', gte: prefix, ...(upper === undefined ? {} : { lt: upper }) };
    const after = options.cursor === undefined ? undefined : this.#ctx.cursors.decode(this.#cursor, options.cursor);
    const plan: ScanPlan = { table: this.def, eq: [], range, notNull: [], order: ['k'], desc: false, after, limit: limit + 1 };
    const { rows, more } = await scanShards(this.#ctx, allShards(this.#ctx), plan, limit, Date.now());
    const items = rows.map((r) => ({ key: r.k as string, ...this.#entry(r) }));
    const last = items[items.length - 1];
    return { items, cursor: more && last !== undefined ? this.#ctx.cursors.encode(this.#cursor, [last.key]) : undefined };
  }

  /** Live entries (optionally under a prefix), summed over shards. */
  async count(options: { prefix?: string } = {}): Promise<number> {
    this.#ctx.checkOpen();
    const prefix = options.prefix ?? '';
    checkString(prefix, 'prefix');
    const upper = prefix === '' ? undefined : prefixUpperBound(prefix);
    const range = prefix === '' ? undefined : { column: 'k', gte: prefix, ...(upper === undefined ? {} : { lt: upper }) };
    const plan: ScanPlan = { table: this.def, eq: [], range, notNull: [], order: ['k'], desc: false, after: undefined, limit: 1 };
    const now = Date.now();
    const counts = await Promise.all(this.#engines.map((e) => e.count(plan, now)));
    return counts.reduce((a, b) => a + b, 0);
  }
}
