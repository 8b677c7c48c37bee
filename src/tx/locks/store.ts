/**
 * Leases on the store (SQLite or PostgreSQL shards): one kv row per lock name, in the namespace
 * `pptx_locks` (configurable), holding `{ o: owner, t: token, e: expiresAtMs }`.
 *
 * Every change is a compare-and-set on the row's version through the shard's group committer, so
 * two acquirers racing for a free (or lapsed) lock cannot both win: the second CAS finds the
 * version moved and re-reads. The fencing token lives IN the lock row and the acquisition that
 * takes the lock is the same CAS that bumps it (token = previous + 1), so tokens strictly increase
 * per name. A released or lapsed lock keeps its row (owner '' or an expiry in the past) and so its
 * token: rows are never deleted, one small row per name ever locked.
 *
 * Time: expiry is wall-clock epoch ms of the process that wrote it (`Date.now()` before the
 * request). Nodes whose clocks disagree by d ms may see a lease lapse up to d ms early or late;
 * fencing (fence.ts) is what keeps writes safe regardless.
 */
import { isPowerplantError, ppError } from '../../errors/index.js';
import type { Kv, Store } from '../../store/index.js';
import {
  CAS_ROUNDS_MAX,
  acquireWithWait,
  checkAcquire,
  checkLease,
  checkName,
  checkTtl,
  notHolderError,
  resolveLimits,
  type AcquireOptions,
  type Lease,
  type LockLimits,
  type LockService,
} from './base.js';

export interface StoreLocksOptions extends LockLimits {
  /** kv namespace of the lock rows. Default 'pptx_locks'. */
  readonly namespace?: string;
}

/** A lock row: owner ('' = free), token of the last acquisition, expiry (epoch ms). */
interface LockRow {
  readonly o: string;
  readonly t: number;
  readonly e: number;
}

export class StoreLocks implements LockService {
  readonly kind = 'store';
  readonly #kv: Kv<LockRow>;
  readonly #limits: Required<LockLimits>;

  /** Use `storeLocks(store)`. */
  constructor(kv: Kv<LockRow>, limits: Required<LockLimits>) {
    this.#kv = kv;
    this.#limits = limits;
  }

  async acquire(name: string, options: AcquireOptions): Promise<Lease> {
    const { owner, ttlMs, waitMs } = checkAcquire(name, options, this.#limits);
    return acquireWithWait(name, waitMs, this.#limits.pollMsMax, () => this.#tryAcquire(name, owner, ttlMs));
  }

  async #tryAcquire(name: string, owner: string, ttlMs: number): Promise<Lease | { heldUntilMs: number }> {
    for (let round = 0; round < CAS_ROUNDS_MAX; round++) {
      const now = Date.now();
      const cur = await this.#kv.get(name);
      if (cur !== undefined && cur.value.o !== '' && cur.value.e > now) return { heldUntilMs: cur.value.e };
      const token = (cur?.value.t ?? 0) + 1;
      const lease: Lease = { name, owner, token, expiresAtMs: now + ttlMs };
      try {
        await this.#kv.cas(name, cur?.version ?? 0, { o: owner, t: token, e: lease.expiresAtMs });
        return lease;
      } catch (err) {
        if (!isPowerplantError(err, 'PP_ERR_CONFLICT')) throw err;
        // Another acquirer (or the holder renewing) wrote in between: read again.
      }
    }
    throw ppError('PP_ERR_LOCK_HELD', { message: `lock "${name}": ${CAS_ROUNDS_MAX} acquisition rounds lost to concurrent writers`, retryAfterMs: 1, data: { name } });
  }

  /** Reads the row and, when `lease` is its live holder, writes `next(row)` by CAS; NOT_HOLDER otherwise. */
  async #update(lease: Lease, next: (nowMs: number) => LockRow): Promise<LockRow> {
    for (let round = 0; round < CAS_ROUNDS_MAX; round++) {
      const now = Date.now();
      const cur = await this.#kv.get(lease.name);
      if (cur === undefined) throw notHolderError(lease, 'the lock was never taken');
      const r = cur.value;
      if (r.t !== lease.token) throw notHolderError(lease, r.t > lease.token ? `it was taken over (token ${r.t})` : 'it is not this lease');
      if (r.o === '') throw notHolderError(lease, 'it was released');
      if (r.o !== lease.owner) throw notHolderError(lease, 'it is held by another owner under this token');
      if (r.e <= now) throw notHolderError(lease, 'the lease expired');
      const row = next(now);
      try {
        await this.#kv.cas(lease.name, cur.version, row);
        return row;
      } catch (err) {
        if (!isPowerplantError(err, 'PP_ERR_CONFLICT')) throw err;
      }
    }
    // Only the holder itself writes a held row (others see it live and back off): lost rounds mean
    // concurrent renews / releases of this same lease.
    throw notHolderError(lease, `${CAS_ROUNDS_MAX} rounds lost to concurrent updates of this lease`);
  }

  async renew(lease: Lease, ttlMs: number): Promise<Lease> {
    checkLease(lease);
    checkTtl(ttlMs, this.#limits);
    const row = await this.#update(lease, (now) => ({ o: lease.owner, t: lease.token, e: now + ttlMs }));
    return { name: lease.name, owner: lease.owner, token: lease.token, expiresAtMs: row.e };
  }

  async release(lease: Lease): Promise<void> {
    checkLease(lease);
    await this.#update(lease, () => ({ o: '', t: lease.token, e: 0 }));
  }

  async holder(name: string): Promise<Lease | undefined> {
    checkName(name);
    const cur = await this.#kv.get(name);
    if (cur === undefined || cur.value.o === '' || cur.value.e <= Date.now()) return undefined;
    return { name, owner: cur.value.o, token: cur.value.t, expiresAtMs: cur.value.e };
  }

  async close(): Promise<void> {
    // The store belongs to the caller.
  }
}

/** Leases on `store` (both engines). Opens (creating on first use) the lock namespace. */
export async function storeLocks(store: Store, options: StoreLocksOptions = {}): Promise<StoreLocks> {
  const limits = resolveLimits(options);
  const kv = await store.kv<LockRow>(options.namespace ?? 'pptx_locks');
  return new StoreLocks(kv, limits);
}
