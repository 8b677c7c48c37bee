/**
 * One transaction attempt: what the function passed to `transactions.run` reads and writes.
 *
 * Reads go to the store at once and are remembered with the version they saw (0 = absent): the
 * read set. Writes are buffered (the write set, one entry per row: the last write of a row wins)
 * and reach the store only at commit, so nothing of an attempt is visible before it commits
 * (no dirty reads) and an aborted attempt leaves nothing behind. A read of a row the transaction
 * already wrote answers the buffered write (read-your-writes inside the transaction).
 *
 * Commit (commit.ts) makes the whole set conditional: every row read must still have the version
 * it had, and no other transaction may be committing any row touched. That is optimistic
 * concurrency control; with the prepare-then-validate order of commit.ts it gives serializable
 * transactions among transactions (docs/tx.md states the exact guarantee).
 */
import { ppError, requireArg } from '../errors/index.js';
import { Kv, Table, type KeyOf, type KvEntry, type StoreOp, type Versioned } from '../store/index.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyTable = Table<any>;
type Handle = AnyTable | Kv<unknown>;

export interface ReadEntry {
  readonly handle: Handle;
  readonly shard: number;
  readonly physical: string;
  readonly keyJson: string;
  /** The user's key, to build checks from. */
  readonly key: unknown;
  /** Version seen (0 = no live row). */
  readonly version: number;
}

export interface WriteEntry {
  readonly handle: Handle;
  readonly shard: number;
  readonly physical: string;
  readonly keyJson: string;
  readonly key: unknown;
  /** Unconditional upsert or delete; the transaction's checks make it conditional. */
  readonly op: StoreOp;
  /** What a read inside the transaction answers: the row / value written, or undefined (deleted). */
  readonly image: { readonly row?: Record<string, unknown>; readonly value?: unknown; readonly expiresAtMs: number | null } | undefined;
}

export interface TxLimits {
  /** Most rows one transaction may read and write together. */
  readonly keysMax: number;
  /** Epoch ms after which the attempt is refused (PP_ERR_TX_ABORTED, reason timeout). */
  readonly deadlineMs: number;
}

/** The key of a row in the read and write sets. */
export function slot(physical: string, keyJson: string): string {
  return `${physical}\u0000${keyJson}`;
}

/**
 * The handle a transaction function receives. Every method validates its input like the store's
 * own methods (the same typed errors); writes return before anything is written.
 */
export class Tx {
  readonly reads = new Map<string, ReadEntry>();
  readonly writes = new Map<string, WriteEntry>();
  readonly #limits: TxLimits;
  readonly #isLocked: ((shard: number, physical: string, keyJson: string) => Promise<boolean>) | undefined;
  #done = false;

  /** `isLocked`: whether a cross-shard commit holds the row (its write not applied yet). */
  constructor(limits: TxLimits, isLocked?: (shard: number, physical: string, keyJson: string) => Promise<boolean>) {
    this.#limits = limits;
    this.#isLocked = isLocked;
  }

  /**
   * A row that is not what the caller expects (absent for an update, present for an insert) may be
   * a committed cross-shard write whose apply is still on its way: then the attempt aborts (and is
   * retried) instead of failing for good.
   */
  async #surprise(handle: Handle, key: unknown): Promise<void> {
    if (this.#isLocked === undefined) return;
    const { shard, keyJson } = locate(handle, key);
    if (await this.#isLocked(shard, handle.def.physical, keyJson)) {
      throw ppError('PP_ERR_TX_ABORTED', { message: `${handle.def.name} ${keyJson} is being committed by another transaction`, data: { reason: 'locked', table: handle.def.name } });
    }
  }

  #checkLive(): void {
    if (this.#done) throw ppError('PP_ERR_INVALID_ARGUMENT', { message: 'this transaction already ended: use the tx handle only inside its function' });
    if (Date.now() > this.#limits.deadlineMs) throw ppError('PP_ERR_TX_ABORTED', { message: 'the transaction ran past its timeoutMs', data: { reason: 'timeout' } });
  }

  /** Rows in the read set or the write set (each counted once). */
  #touched = 0;

  /** Before a row joins the sets for the first time. */
  #checkSize(): void {
    if (this.#touched + 1 > this.#limits.keysMax) {
      throw ppError('PP_ERR_TX_TOO_LARGE', { message: `a transaction touches at most ${this.#limits.keysMax} rows (tx keysMax)`, data: { max: this.#limits.keysMax } });
    }
  }

  /** The shard whose local commit decides a cross-shard commit (see `coordinateOn`). */
  coordinator: number | undefined;

  /**
   * Makes the shard of this row the coordinator of a cross-shard commit, when the transaction
   * writes there: its rows become visible in the very local commit that decides the transaction,
   * so a reader that sees them knows the whole transaction committed (a workflow's checkpoint).
   * Default: the lowest shard written.
   */
  coordinateOn<T extends Record<string, unknown>>(table: Table<T>, key: KeyOf<T>): void;
  coordinateOn<V>(kv: Kv<V>, key: string): void;
  coordinateOn(handle: Handle, key: unknown): void {
    this.coordinator = locate(handle, key).shard;
  }

  /** Marks the attempt finished; later calls on this handle throw. */
  end(): void {
    this.#done = true;
  }

  /** Reads a row (table) or entry (kv); remembered in the read set with its version. */
  get<T extends Record<string, unknown>>(table: Table<T>, key: KeyOf<T>): Promise<Versioned<T> | undefined>;
  get<V>(kv: Kv<V>, key: string): Promise<KvEntry<V> | undefined>;
  async get(handle: Handle, key: unknown): Promise<unknown> {
    this.#checkLive();
    const { shard, keyJson } = locate(handle, key);
    const physical = handle.def.physical;
    const s = slot(physical, keyJson);
    const w = this.writes.get(s);
    if (w !== undefined) {
      const r = this.reads.get(s);
      if (w.image === undefined) return undefined;
      const version = r?.version ?? 0;
      return handle instanceof Table ? { row: w.image.row, version, expiresAtMs: w.image.expiresAtMs } : { value: w.image.value, version, expiresAtMs: w.image.expiresAtMs };
    }
    if (!this.reads.has(s)) this.#checkSize();
    const got = handle instanceof Table ? await (handle as AnyTable).get(key as KeyOf<Record<string, unknown>>) : await (handle as Kv<unknown>).get(key as string);
    this.#checkLive();
    const version = got?.version ?? 0;
    const prev = this.reads.get(s);
    if (prev !== undefined && prev.version !== version) {
      throw ppError('PP_ERR_TX_ABORTED', { message: `${handle.def.name} ${keyJson} changed while the transaction read it`, data: { reason: 'conflict', table: handle.def.name } });
    }
    if (prev === undefined) {
      this.reads.set(s, { handle, shard, physical, keyJson, key, version });
      this.#touched++;
    }
    return got;
  }

  /**
   * Adds a row to the read set at a version the caller already knows (0 = absent), without
   * reading it: the commit then requires that version, as if the transaction had read it.
   */
  expect<T extends Record<string, unknown>>(table: Table<T>, key: KeyOf<T>, version: number): void;
  expect<V>(kv: Kv<V>, key: string, version: number): void;
  expect(handle: Handle, key: unknown, version: number): void {
    this.#checkLive();
    requireArg(Number.isSafeInteger(version) && version >= 0, 'version', 'must be an integer >= 0');
    const { shard, keyJson } = locate(handle, key);
    const physical = handle.def.physical;
    const s = slot(physical, keyJson);
    const prev = this.reads.get(s);
    if (prev !== undefined && prev.version !== version) {
      throw ppError('PP_ERR_TX_ABORTED', { message: `${handle.def.name} ${keyJson} is at version ${prev.version}, not ${version}`, data: { reason: 'conflict', table: handle.def.name } });
    }
    if (prev === undefined) {
      const fresh = !this.writes.has(s);
      if (fresh) this.#checkSize();
      this.reads.set(s, { handle, shard, physical, keyJson, key, version });
      if (fresh) this.#touched++;
    }
  }

  #write(handle: Handle, key: unknown, op: StoreOp, image: WriteEntry['image']): void {
    const physical = handle.def.physical;
    const keyJson = op.write.keyJson;
    const s = slot(physical, keyJson);
    const fresh = !this.writes.has(s) && !this.reads.has(s);
    if (fresh) this.#checkSize();
    this.writes.set(s, { handle, shard: op.shard, physical, keyJson, key, op, image });
    if (fresh) this.#touched++;
  }

  /** Inserts a row: the commit fails (aborts, retried) if a live row with its key exists then. */
  async insert<T extends Record<string, unknown>>(table: Table<T>, row: T, options: { ttlMs?: number } = {}): Promise<void> {
    const current = await this.get(table, table.keyOfRow(row) as KeyOf<T>);
    if (current !== undefined) {
      await this.#surprise(table, table.keyOfRow(row));
      throw ppError('PP_ERR_CONFLICT', { message: `${table.name} ${table.locate(table.keyOfRow(row) as KeyOf<T>).keyJson} already exists`, data: { table: table.name } });
    }
    this.upsert(table, row, options);
  }

  /** Writes the whole row (blind unless the transaction read it). */
  upsert<T extends Record<string, unknown>>(table: Table<T>, row: T, options: { ttlMs?: number } = {}): void {
    this.#checkLive();
    const op = table.writeOp({ op: 'upsert', row, ...(options.ttlMs === undefined ? {} : { ttlMs: options.ttlMs }) });
    this.#write(table, table.keyOfRow(row), op, { row: { ...row }, expiresAtMs: op.write.expiresAtMs ?? null });
  }

  /** Reads the row and writes it with `patch` applied; PP_ERR_NOT_FOUND if there is none. Resolves the new row. */
  async update<T extends Record<string, unknown>>(table: Table<T>, key: KeyOf<T>, patch: Partial<T>, options: { ttlMs?: number } = {}): Promise<T> {
    requireArg(typeof patch === 'object' && patch !== null && !Array.isArray(patch), 'patch', 'must be an object');
    const current = await this.get(table, key);
    if (current === undefined) await this.#surprise(table, key);
    if (current === undefined) throw ppError('PP_ERR_NOT_FOUND', { message: `${table.name} ${table.locate(key).keyJson} not found`, data: { table: table.name } });
    for (const k of Object.keys(patch)) {
      if (table.def.primaryKey.includes(k)) requireArg(false, `patch.${k}`, 'primary-key columns cannot be updated (delete and insert instead)');
    }
    const row = { ...current.row } as Record<string, unknown>;
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined) delete row[k];
      else row[k] = v;
    }
    this.upsert(table, row as T, options);
    return row as T;
  }

  /** Deletes the row (or kv entry) if it exists at commit. */
  delete<T extends Record<string, unknown>>(table: Table<T>, key: KeyOf<T>): void;
  delete<V>(kv: Kv<V>, key: string): void;
  delete(handle: Handle, key: unknown): void {
    this.#checkLive();
    const op = handle instanceof Table ? (handle as AnyTable).writeOp({ op: 'delete', key: key as KeyOf<Record<string, unknown>> }) : (handle as Kv<unknown>).writeOp({ op: 'delete', key: key as string });
    this.#write(handle, key, op, undefined);
  }

  /** Writes a kv entry (blind unless the transaction read it). */
  put<V>(kv: Kv<V>, key: string, value: V, options: { ttlMs?: number } = {}): void {
    this.#checkLive();
    const op = kv.writeOp({ op: 'put', key, value, ...(options.ttlMs === undefined ? {} : { ttlMs: options.ttlMs }) });
    this.#write(kv as Kv<unknown>, key, op, { value, expiresAtMs: op.write.expiresAtMs ?? null });
  }
}

export function locate(handle: Handle, key: unknown): { shard: number; keyJson: string } {
  if (handle instanceof Table) return (handle as AnyTable).locate(key as KeyOf<Record<string, unknown>>);
  if (handle instanceof Kv) return handle.locate(key as string);
  throw ppError('PP_ERR_INVALID_ARGUMENT', { field: 'handle', message: 'handle: must be a store table or kv namespace (await store.table / store.kv first)' });
}

/** A condition on a row of the read set or write set: its live version is `version`. */
export function checkOf(handle: Handle, key: unknown, version: number): StoreOp {
  return handle instanceof Table ? (handle as AnyTable).checkOp(key as KeyOf<Record<string, unknown>>, version) : (handle as Kv<unknown>).checkOp(key as string, version);
}
