/**
 * Fenced writes: store writes that apply only while their fencing token is not stale.
 *
 * The store keeps, per (lock name, shard), the highest token any fenced write (or `advance`)
 * carried there: a row of the table `pptx_fence` (configurable), partitioned by LIST on its `shard`
 * column so the row for shard s lives ON shard s. `write(name, token, ops)` submits ONE atomic
 * request to the ops' shard (`store.atomic`, through its group committer):
 *
 *     [ fence condition , ...ops ]
 *       token == highest: a check of the fence row's version (nothing written, writers with the
 *                         current token run side by side)
 *       token >  highest: the fence row raised to `token` by compare-and-set on its version
 *       token <  highest: refused before anything is sent: PP_ERR_FENCED, nothing written
 *
 * so a write and the fence it passed commit together or not at all: a stale holder's write can
 * never land after a newer token's write on the same shard, even if it was admitted a moment
 * before the newer one raised the fence (its check then fails at commit and it re-reads). A
 * conflict on the fence row (another token raised it in between) is retried after a re-read; a
 * conflict of the caller's own ops is thrown to the caller as it is. The fence row's token and
 * version are remembered per process (bounded), so a holder's steady stream of writes costs one
 * request each, no read; a stale memory costs one conflict and a re-read.
 *
 * The fence is per shard: a shard refuses a token once a higher one was seen THERE. A new holder
 * that must shut out its predecessor everywhere before writing calls `advance(name, token)`,
 * which raises the fence on every shard. Tokens are plain numbers, so they may come from any lock
 * service (store or Redis) or anything else that hands out increasing numbers.
 */
import { Type } from '@sinclair/typebox';
import { isPowerplantError, ppError, requireArg } from '../../errors/index.js';
import type { OpOutcome, Store, StoreOp, Table } from '../../store/index.js';
import { CAS_ROUNDS_MAX, checkName } from './base.js';

const FenceSchema = Type.Object({ shard: Type.Integer(), name: Type.String(), token: Type.Integer() });
type FenceRow = { shard: number; name: string; token: number };
/** A fence row's highest token and version (0, 0: no row). */
interface Seen { readonly token: number; readonly version: number }
const NONE: Seen = { token: 0, version: 0 };
/** Fence rows a process remembers (saves the read before each fenced write; measured in bench/locks.ts). */
export const FENCE_SEEN_MAX = 10_000;

export interface FenceOptions {
  /** Table of the fence rows. Default 'pptx_fence'. */
  readonly table?: string;
}

function checkToken(token: unknown): asserts token is number {
  requireArg(Number.isSafeInteger(token) && (token as number) >= 1, 'token', 'must be an integer >= 1 (a fencing token)');
}

export class Fence {
  readonly #store: Store;
  readonly #rows: Table<FenceRow>;
  /** (shard, name) -> the fence row as this process last saw it; at most FENCE_SEEN_MAX, oldest dropped. */
  readonly #seen = new Map<string, Seen>();

  /** Use `openFence(store)`. */
  constructor(store: Store, rows: Table<FenceRow>) {
    this.#store = store;
    this.#rows = rows;
  }

  /**
   * Applies `ops` (of ONE shard: from `table.writeOp` / `kv.writeOp` / `checkOp`) as one atomic
   * request with the fence check of `name` on that shard. PP_ERR_FENCED (nothing written) when a
   * higher token was seen there; otherwise the ops' outcomes, in order. Their own failures (a
   * version conflict, a missing row) are thrown as the store throws them, and nothing is written.
   */
  async write(name: string, token: number, ops: readonly StoreOp[]): Promise<readonly OpOutcome[]> {
    checkName(name);
    checkToken(token);
    requireArg(Array.isArray(ops) && ops.length > 0, 'ops', 'must be a non-empty array of store ops');
    const shard = ops[0]!.shard;
    for (const o of ops) requireArg(o.shard === shard, 'ops', 'all ops of one fenced write must be on one shard (the fence is checked on that shard)');
    requireArg(ops.length < this.#store.limits.batchOpsMax, 'ops', `at most ${this.#store.limits.batchOpsMax - 1} ops (limits.batchOpsMax, one is the fence)`);
    const key = { shard, name };
    const ck = `${shard}\n${name}`;
    // What this process last saw of the fence row. A stale entry costs a conflict and a re-read,
    // never a wrong answer: the check at commit is on the row's version, and the highest token
    // only ever grows (so "token < what was seen" is a correct refusal).
    let known = this.#seen.get(ck) ?? (await this.#read(key));
    for (let round = 0; round < CAS_ROUNDS_MAX; round++) {
      if (token < known.token) throw this.#fenced(name, token, known.token, shard);
      const fenceOp = token === known.token
        ? this.#rows.checkOp(key, known.version)
        : this.#rows.writeOp({ op: 'upsert', row: { shard, name, token }, version: known.version });
      try {
        const out = await this.#store.atomic([fenceOp, ...ops]);
        if (token > known.token) this.#remember(ck, { token, version: out[0]!.version });
        return out.slice(1);
      } catch (err) {
        if (!isPowerplantError(err, 'PP_ERR_CONFLICT')) throw err;
        // The fence row moved (another token got there first: re-read, maybe now fenced), or one of
        // the caller's own conditions failed (thrown as it is).
        const now = await this.#read(key);
        this.#remember(ck, now);
        if (now.version === known.version) throw err;
        known = now;
      }
    }
    throw ppError('PP_ERR_CONFLICT', { message: `fence "${name}": ${CAS_ROUNDS_MAX} rounds lost to concurrent writers on shard ${this.#store.shardName(shard)}`, data: { name } });
  }

  async #read(key: { shard: number; name: string }): Promise<Seen> {
    const cur = await this.#rows.get(key);
    return cur === undefined ? NONE : { token: cur.row.token, version: cur.version };
  }

  #remember(ck: string, seen: Seen): void {
    this.#seen.delete(ck);
    this.#seen.set(ck, seen);
    if (this.#seen.size > FENCE_SEEN_MAX) this.#seen.delete(this.#seen.keys().next().value!);
  }

  /**
   * Raises the fence of `name` to `token` on every shard (a no-op where it is already there or
   * higher), so from now on every shard refuses lower tokens. Resolves the highest token now on
   * the fence (above `token` when a newer holder already advanced it: this caller is then stale).
   */
  async advance(name: string, token: number): Promise<number> {
    checkName(name);
    checkToken(token);
    const highs = await Promise.all(this.#store.shards.map(async (_s, shard) => {
      for (let round = 0; round < CAS_ROUNDS_MAX; round++) {
        const cur = await this.#rows.get({ shard, name });
        const highest = cur?.row.token ?? 0;
        if (highest >= token) return highest;
        try {
          await this.#rows.upsert({ shard, name, token }, { version: cur?.version ?? 0 });
          return token;
        } catch (err) {
          if (!isPowerplantError(err, 'PP_ERR_CONFLICT')) throw err;
        }
      }
      throw ppError('PP_ERR_CONFLICT', { message: `fence "${name}": ${CAS_ROUNDS_MAX} rounds lost to concurrent writers`, data: { name } });
    }));
    return Math.max(...highs);
  }

  /** The highest token seen for `name` on a shard (index), or on any shard when omitted; 0 = none. */
  async highest(name: string, shard?: number): Promise<number> {
    checkName(name);
    const shards = shard === undefined ? this.#store.shards.map((_s, i) => i) : [shard];
    if (shard !== undefined) requireArg(Number.isInteger(shard) && shard >= 0 && shard < this.#store.shards.length, 'shard', `must be a shard index in [0, ${this.#store.shards.length - 1}]`);
    const rows = await this.#rows.getMany(shards.map((s) => ({ shard: s, name })));
    return Math.max(0, ...rows.map((r) => r?.row.token ?? 0));
  }

  #fenced(name: string, token: number, highest: number, shard: number): Error {
    return ppError('PP_ERR_FENCED', {
      message: `fence "${name}": token ${token} is stale (shard ${this.#store.shardName(shard)} has seen ${highest})`,
      data: { name, token, highest },
    });
  }
}

/** The fence of `store` (creates its table on first use). */
export async function openFence(store: Store, options: FenceOptions = {}): Promise<Fence> {
  const partitions = store.shards.map((s, i) => ({ name: s, shard: s, values: [i] }));
  const rows = await store.table(options.table ?? 'pptx_fence', {
    schema: FenceSchema,
    primaryKey: ['shard', 'name'],
    partitionKey: ['shard'],
    partitioning: { kind: 'list', partitions },
  });
  return new Fence(store, rows);
}
