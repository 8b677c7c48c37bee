/**
 * A mirror: a DuckDB copy of one store table, kept in step by the store's change feed.
 *
 * Exactly once: every batch of feed records is applied in ONE DuckDB transaction together with the
 * shard's new position (`pp.positions`), so after a crash the mirror resumes from the last position
 * it committed: a record is never applied twice (the positions and the rows commit together) nor
 * skipped (the feed hands records in position order, and the mirror asks from its own position).
 * A batch that fails rolls back and is handed again by the feed.
 *
 * How a batch applies: the records are folded per primary key (the last one wins). A key whose first
 * record in the batch is an insert (a put at version 1: the row did not exist in the store) is
 * appended without a delete; any other key is deleted from every live partition first (one DELETE
 * … USING a staged key list per partition) and then appended if its last record is a put. Rows go
 * in through DuckDB's appender. Records at or below `exact_after` (written while a snapshot was
 * being read) are all treated as "may exist". TTL expiry is not a feed event: the mirror keeps each
 * row's expiry, the view hides expired rows, and expired rows are removed before an insert could
 * meet a row the store has already swept.
 *
 * A record whose shape no longer fits the mirror (a field without a column, a value of another
 * type) stops the mirror with PP_ERR_MIRROR_STOPPED naming the column; nothing of that batch is
 * applied. Opening the mirror again with the table's new definition adds the new (nullable)
 * columns and resumes from the same position.
 */
import type { DuckDBAppender, DuckDBConnection } from '@duckdb/node-api';
import { isPowerplantError, ppError, requireArg, type PowerplantError } from '../errors/index.js';
import type { ChangeFeed, ChangeRecord, Positions, Subscription, Table } from '../store/index.js';
import { appendKey, appendRows, checkRow, duckType, lit, q, tableColumnsSql, type AppendRow, type ColumnDef, type TableDef } from './columns.js';
import { Layout, PARTITIONS_MAX_DEFAULT, PARTITIONS_MAX_LIMIT, checkPartitionBy, partitionTableSql, tombName, viewSql, type Partition, type PartitionBy } from './layout.js';

export interface MirrorOptions {
  /** The name of the mirrored table in SQL (default: the store table's name). */
  readonly as?: string;
  readonly partitionBy?: PartitionBy;
  /** Most partitions; rows of later values (keys or time buckets) share an overflow partition. Default 256. */
  readonly partitionsMax?: number;
  /** Feed records per batch (one DuckDB transaction each). Default 4096, at most 10,000. */
  readonly batchMax?: number;
  /** How often to look for writes of other processes, in ms. Default 100. */
  readonly pollIntervalMs?: number;
  /** Wait after a failed batch before it is retried, in ms. Default 1000. */
  readonly retryDelayMs?: number;
  /** Errors while following (a failed batch, the stop). */
  readonly onError?: (err: unknown) => void;
}

export interface MirrorLag {
  /** Feed records of the followed shards not yet seen by the mirror (any table's). */
  readonly records: number;
  readonly shards: Readonly<Record<string, number>>;
  /** Age of the oldest record not yet applied, in ms (0 when caught up). */
  readonly ms: number;
}

export interface MirrorStats {
  readonly state: 'running' | 'stopped' | 'closed';
  readonly error: PowerplantError | undefined;
  /** Feed records applied, batches (transactions), rows appended, deletes run for keys. */
  readonly records: number;
  readonly batches: number;
  readonly rowsAppended: number;
  readonly keysDeleted: number;
  readonly positions: Positions;
  readonly partitions: number;
  /** Commit (store) to visible (DuckDB commit) of the most recent records, in ms. */
  readonly freshnessMs: { readonly samples: number; readonly p50: number; readonly p99: number; readonly max: number };
}

/** What a mirror needs from the analytics instance that owns it. */
export interface MirrorHost {
  readonly feed: ChangeFeed;
  readonly shards: readonly string[];
  /** The store's largest page (a reload reads the table in pages of this size). */
  readonly pageMax: number;
  /** Runs `fn` on the one writer connection, serialized with every other write. */
  write<T>(fn: (c: DuckDBConnection) => Promise<T>): Promise<T>;
  /** Called when a mirror is closed (the host forgets it). */
  forget(name: string): void;
  /** Called after a commit that replaced a mirror's view (a new partition, TTL filtering). */
  viewChanged(): void;
}

const NAME_RE = /^[A-Za-z][A-Za-z0-9_]{0,47}$/;
const FRESHNESS_SAMPLES = 8192;
const WAITERS_MAX = 10_000;
const WAIT_MS_MAX = 600_000;
const WAIT_RECHECK_MS = 20;
/**
 * Rows appended since the last checkpoint after which a mirror that has caught up (a batch short
 * of batchMax) checkpoints DuckDB itself: the checkpoint that writes a large catch-up out then
 * happens at its end, not as a stall of the first steady-state commit that crosses DuckDB's WAL
 * threshold (seen in bench/analytics.ts as a freshness spike of seconds).
 */
const CHECKPOINT_AFTER_ROWS = 200_000;

interface Waiter {
  readonly target: Positions;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
  readonly timer: NodeJS.Timeout;
}

interface Folded {
  first: ChangeRecord;
  last: ChangeRecord;
}

export class Mirror<T extends Record<string, unknown> = Record<string, unknown>> {
  /** The mirrored table's name in SQL. */
  readonly name: string;
  /** The store table it follows. */
  readonly source: string;
  readonly def: TableDef;
  readonly #host: MirrorHost;
  readonly #columns: readonly ColumnDef[];
  readonly #byName: ReadonlyMap<string, ColumnDef>;
  readonly #pk: readonly ColumnDef[];
  readonly #layout: Layout;
  readonly #options: MirrorOptions;
  readonly #pos: Record<string, number> = {};
  readonly #exactAfter: Record<string, number> = {};
  #ttl: boolean;
  #sub: Subscription | undefined;
  #state: 'running' | 'stopped' | 'closed' = 'running';
  #error: PowerplantError | undefined;
  readonly #waiters = new Set<Waiter>();
  readonly #fresh = new Float64Array(FRESHNESS_SAMPLES);
  #freshN = 0;
  #records = 0;
  #batches = 0;
  #appended = 0;
  #deleted = 0;
  #sinceCheckpoint = 0;
  #batchMax = 4096;
  /** Archives made so far (archive.ts advances it). */
  archiveGen = 0;
  /** Phantom: the row type, for the typed builder. */
  declare readonly __row: T;

  private constructor(host: MirrorHost, name: string, def: TableDef, layout: Layout, ttl: boolean, options: MirrorOptions) {
    this.#host = host;
    this.name = name;
    this.source = def.name;
    this.def = def;
    this.#columns = def.columns;
    this.#byName = new Map(def.columns.map((c) => [c.name, c]));
    this.#pk = def.primaryKey.map((k) => this.#byName.get(k)!);
    this.#layout = layout;
    this.#ttl = ttl;
    this.#options = options;
  }

  /** Creates or reopens the mirror (see Analytics.mirror). */
  static async open<T extends Record<string, unknown>>(host: MirrorHost, table: Table<T>, options: MirrorOptions = {}): Promise<Mirror<T>> {
    requireArg(typeof options === 'object' && options !== null, 'options', 'must be an object');
    const def = table.def;
    requireArg(def.kind === 'table', 'table', 'must be a store table (kv namespaces are not mirrored)');
    const name = options.as ?? def.name;
    requireArg(typeof name === 'string' && NAME_RE.test(name) && !name.includes('__'), 'as', `must match ${NAME_RE.source} without "__"`);
    const by = checkPartitionBy(options.partitionBy, def);
    const partitionsMax = options.partitionsMax ?? PARTITIONS_MAX_DEFAULT;
    requireArg(Number.isInteger(partitionsMax) && partitionsMax >= 2 && partitionsMax <= PARTITIONS_MAX_LIMIT, 'partitionsMax', `must be an integer in [2, ${PARTITIONS_MAX_LIMIT}]`);
    const batchMax = options.batchMax ?? 4096;
    requireArg(Number.isInteger(batchMax) && batchMax >= 1 && batchMax <= 10_000, 'batchMax', 'must be an integer in [1, 10000]');
    const m = await host.write(async (c) => {
      const rows = (await c.runAndReadAll(`SELECT source, def, layout, ttl, archive_gen FROM pp.mirrors WHERE name = ${lit(name)}`)).getRowObjectsJS();
      let ttl = false;
      let archiveGen = 0;
      let parts: Partition[] = [];
      if (rows.length === 0) {
        await c.run('BEGIN');
        try {
          await c.run(`INSERT INTO pp.mirrors VALUES (${lit(name)}, ${lit(def.name)}, ${lit(JSON.stringify(def))}, ${lit(JSON.stringify(by ?? null))}, false, 0)`);
          for (const s of host.shards) await c.run(`INSERT INTO pp.positions VALUES (${lit(name)}, ${lit(s)}, 0, 0)`);
          const layout = new Layout(name, by, partitionsMax, []);
          await c.run(viewSql(def, def.columns, layout, false));
          await c.run('COMMIT');
        } catch (err) {
          await c.run('ROLLBACK').catch(() => undefined);
          throw err;
        }
      } else {
        const r = rows[0]!;
        requireArg(r.source === def.name, 'as', `mirror ${name} follows table ${String(r.source)}, not ${def.name}`);
        requireArg(String(r.layout) === JSON.stringify(by ?? null), 'partitionBy', `mirror ${name} was created with partitionBy ${String(r.layout)}; drop it to change the layout`);
        ttl = r.ttl === true;
        archiveGen = Number(r.archive_gen);
        parts = (await c.runAndReadAll(`SELECT ordinal, value, tbl, archive, archive_gen, archive_cols FROM pp.partitions WHERE mirror = ${lit(name)} ORDER BY ordinal`))
          .getRowObjectsJS()
          .map((p) => ({
            ordinal: Number(p.ordinal),
            value: String(p.value),
            table: p.tbl === null ? undefined : String(p.tbl),
            archive: p.archive === null ? undefined : String(p.archive),
            archiveGen: Number(p.archive_gen ?? 0),
            archiveColumns: p.archive_cols === null ? [] : (JSON.parse(String(p.archive_cols)) as string[]),
          }));
        await evolve(c, name, JSON.parse(String(r.def)) as TableDef, def, parts);
        for (const s of host.shards) {
          const has = (await c.runAndReadAll(`SELECT 1 FROM pp.positions WHERE mirror = ${lit(name)} AND shard = ${lit(s)}`)).currentRowCount;
          if (has === 0) await c.run(`INSERT INTO pp.positions VALUES (${lit(name)}, ${lit(s)}, 0, 0)`);
        }
      }
      const layout = new Layout(name, by, partitionsMax, parts);
      await c.run(viewSql(def, def.columns, layout, ttl));
      const mirror = new Mirror<T>(host, name, def, layout, ttl, options);
      mirror.archiveGen = archiveGen;
      for (const p of (await c.runAndReadAll(`SELECT shard, pos, exact_after FROM pp.positions WHERE mirror = ${lit(name)}`)).getRowObjectsJS()) {
        mirror.#pos[String(p.shard)] = Number(p.pos);
        mirror.#exactAfter[String(p.shard)] = Number(p.exact_after);
      }
      return mirror;
    });
    await m.#follow(table, batchMax);
    return m;
  }

  async #follow(table: Table<T>, batchMax: number): Promise<void> {
    this.#batchMax = batchMax;
    const subscribe = (): Promise<Subscription> =>
      this.#host.feed.subscribe({
        from: { ...this.#pos },
        only: { tables: [this.source] },
        batchMax,
        pollIntervalMs: this.#options.pollIntervalMs ?? 100,
        retryDelayMs: this.#options.retryDelayMs ?? 1000,
        handler: (records, shard) => this.#apply(records, shard),
        onError: (err) => this.#onFeedError(err),
      });
    try {
      this.#sub = await subscribe();
    } catch (err) {
      // The feed no longer holds where the mirror stands (a new mirror of an older table, or one
      // that fell behind retention): load the table's rows, then follow from there.
      if (!isPowerplantError(err, 'PP_ERR_FEED_TRUNCATED')) throw err;
      await this.#snapshot(table);
      this.#sub = await subscribe();
    }
  }

  #onFeedError(err: unknown): void {
    if (isPowerplantError(err, 'PP_ERR_FEED_TRUNCATED')) {
      this.#stop(ppError('PP_ERR_MIRROR_STOPPED', { message: `mirror ${this.name}: the change feed was trimmed past the mirror's position; reopen the mirror to reload the table`, cause: err }));
    }
    try {
      this.#options.onError?.(err);
    } catch {
      // a failing hook must not stop the mirror
    }
  }

  #stop(err: PowerplantError): void {
    if (this.#state !== 'running') return;
    this.#state = 'stopped';
    this.#error = err;
    for (const w of this.#waiters) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.#waiters.clear();
    this.#checkWaiters();
    const sub = this.#sub;
    // Not awaited: the feed loop that called us waits for this handler before it can close.
    if (sub !== undefined) setImmediate(() => void sub.close());
    try {
      this.#options.onError?.(err);
    } catch {
      // ignore
    }
  }

  /** Applies one batch of one shard (handed by the feed in position order). */
  async #apply(records: readonly ChangeRecord[], shard: string): Promise<void> {
    if (this.#state !== 'running') throw this.#error ?? ppError('PP_ERR_MIRROR_STOPPED', { message: `mirror ${this.name} is closed` });
    await this.#host.write(async (c) => {
      if (this.#state !== 'running') throw this.#error ?? ppError('PP_ERR_MIRROR_STOPPED');
      const applied = this.#pos[shard] ?? 0;
      const exactAfter = this.#exactAfter[shard] ?? 0;
      const folded = new Map<string, Folded>();
      let last = applied;
      let n = 0;
      let ttlSeen = false;
      let maxTs = 0;
      for (const r of records) {
        if (r.position <= applied) continue;
        n++;
        last = r.position;
        if (r.op === 'put') {
          const bad = checkRow(this.name, this.#columns, this.#byName, r.row ?? {}, shard, r.position);
          if (bad !== undefined) {
            this.#stop(bad);
            throw bad;
          }
          if (r.expiresAtMs !== null) ttlSeen = true;
        }
        if (r.committedAtMs > maxTs) maxTs = r.committedAtMs;
        const k = keyString(r.key);
        const f = folded.get(k);
        if (f === undefined) folded.set(k, { first: r, last: r });
        else f.last = r;
      }
      if (n === 0) return;
      const deletes: ChangeRecord[] = [];
      const puts = new Map<string, ChangeRecord[]>();
      const newValues = new Set<string>();
      let freshInsert = false;
      for (const { first, last: l } of folded.values()) {
        const inserted = first.op === 'put' && first.version === 1 && first.position > exactAfter;
        if (inserted) freshInsert = true;
        else deletes.push(l);
        if (l.op === 'put') {
          const v = this.#layout.valueOf(l.row!, newValues);
          let list = puts.get(v);
          if (list === undefined) puts.set(v, (list = []));
          list.push(l);
        }
      }
      const created: string[] = [];
      const ttlBefore = this.#ttl;
      await c.run('BEGIN');
      try {
        if (this.#ttl && freshInsert) {
          for (const p of this.#layout.partitions) if (p.table !== undefined) await c.run(`DELETE FROM pp.${q(p.table)} WHERE "_exp" <= ${maxTs}`);
        }
        if (deletes.length > 0) await this.#deleteKeys(c, deletes);
        let viewDirty = false;
        for (const [value, list] of puts) {
          let p = this.#layout.get(value);
          if (p === undefined || p.table === undefined) {
            p = await this.#createPartition(c, value, p);
            created.push(value);
            viewDirty = true;
          }
          const a = await c.createAppender(p.table!, 'pp');
          try {
            appendRows(a, this.#columns, list.map((r) => ({ row: r.row!, version: r.version, expiresAtMs: r.expiresAtMs })));
            a.flushSync();
          } finally {
            a.closeSync();
          }
          this.#appended += list.length;
        }
        if (ttlSeen && !this.#ttl) {
          this.#ttl = true;
          await c.run(`UPDATE pp.mirrors SET ttl = true WHERE name = ${lit(this.name)}`);
          viewDirty = true;
        }
        if (viewDirty) await c.run(viewSql(this.def, this.#columns, this.#layout, this.#ttl));
        await c.run(`UPDATE pp.positions SET pos = ${last} WHERE mirror = ${lit(this.name)} AND shard = ${lit(shard)}`);
        await c.run('COMMIT');
      } catch (err) {
        await c.run('ROLLBACK').catch(() => undefined);
        for (const v of created) this.#layout.forget(v);
        this.#ttl = ttlBefore;
        throw err;
      }
      if (created.length > 0 || (ttlSeen && !ttlBefore)) this.#host.viewChanged();
      this.#pos[shard] = last;
      this.#records += n;
      this.#batches++;
      this.#deleted += deletes.length;
      const now = Date.now();
      for (const { last: l } of folded.values()) this.#fresh[this.#freshN++ % FRESHNESS_SAMPLES] = Math.max(0, now - l.committedAtMs);
      this.#sinceCheckpoint += n;
    });
    this.#checkWaiters();
    if (records.length < this.#batchMax && this.#sinceCheckpoint >= CHECKPOINT_AFTER_ROWS) {
      this.#sinceCheckpoint = 0;
      // After the waits resolved (the rows are visible already). An optimization only: DuckDB
      // refuses it while another transaction writes, and checkpoints by itself anyway.
      await this.#host.write((c) => c.run('CHECKPOINT')).catch(() => undefined);
    }
  }

  async #createPartition(c: DuckDBConnection, value: string, existing: Partition | undefined): Promise<Partition> {
    const p = existing ?? this.#layout.add(value);
    if (existing !== undefined) p.table = `${this.name}__p${p.ordinal}`;
    await c.run(partitionTableSql(p.table!, tableColumnsSql(this.#columns)));
    if (existing === undefined) await c.run(`INSERT INTO pp.partitions VALUES (${lit(this.name)}, ${p.ordinal}, ${lit(value)}, ${lit(p.table!)}, NULL, 0, NULL)`);
    else await c.run(`UPDATE pp.partitions SET tbl = ${lit(p.table!)} WHERE mirror = ${lit(this.name)} AND ordinal = ${p.ordinal}`);
    return p;
  }

  /** Deletes the keys of `records` from every live partition (and tombstones them over archives). */
  async #deleteKeys(c: DuckDBConnection, records: readonly ChangeRecord[]): Promise<void> {
    // A plain table in pp (emptied in the same transaction), not a TEMP one: the appender needs a schema.
    const stage = `${this.name}__stage`;
    const pkCols = this.#pk.map((k) => `${q(k.name)} ${duckType(k)}`).join(', ');
    await c.run(`CREATE TABLE IF NOT EXISTS pp.${q(stage)} (${pkCols})`);
    const a = await c.createAppender(stage, 'pp');
    try {
      for (const r of records) appendKey(a, this.#pk, r.key);
      a.flushSync();
    } finally {
      a.closeSync();
    }
    const on = this.#pk.map((k) => `t.${q(k.name)} = s.${q(k.name)}`).join(' AND ');
    for (const p of this.#layout.partitions) {
      if (p.table !== undefined) await c.run(`DELETE FROM pp.${q(p.table)} AS t USING pp.${q(stage)} AS s WHERE ${on}`);
    }
    if (this.#layout.hasArchive) await c.run(`INSERT INTO pp.${q(tombName(this.name))} SELECT *, ${this.archiveGen} FROM pp.${q(stage)}`);
    await c.run(`DELETE FROM pp.${q(stage)}`);
  }

  /**
   * Loads the table's current rows (one transaction with the positions), replacing whatever the
   * mirror held: the feed's heads before the read are where following resumes, and records up to
   * the heads after the read are applied as upserts (the read may already hold their rows).
   */
  async #snapshot(table: Table<T>): Promise<void> {
    await this.#host.write(async (c) => {
      const h0 = await this.#host.feed.heads();
      const created: string[] = [];
      await c.run('BEGIN');
      try {
        for (const p of this.#layout.partitions) {
          if (p.table !== undefined) await c.run(`DELETE FROM pp.${q(p.table)}`);
          // The load holds every row: an archive would show its rows twice (its file stays on disk).
          if (p.archive !== undefined) {
            await c.run(`UPDATE pp.partitions SET archive = NULL WHERE mirror = ${lit(this.name)} AND ordinal = ${p.ordinal}`);
            p.archive = undefined;
          }
        }
        const appenders = new Map<string, DuckDBAppender>();
        try {
          let cursor: string | undefined;
          do {
            const page = await table.query({ limit: this.#host.pageMax, ...(cursor === undefined ? {} : { cursor }) });
            const byValue = new Map<string, AppendRow[]>();
            for (const item of page.items) {
              const row = item.row as Record<string, unknown>;
              const bad = checkRow(this.name, this.#columns, this.#byName, row, 'snapshot', 0);
              if (bad !== undefined) throw bad;
              const v = this.#layout.valueOf(row, new Set());
              let a = appenders.get(v);
              if (a === undefined) {
                let p = this.#layout.get(v);
                if (p === undefined || p.table === undefined) {
                  p = await this.#createPartition(c, v, p);
                  created.push(v);
                }
                a = await c.createAppender(p.table!, 'pp');
                appenders.set(v, a);
              }
              if (item.expiresAtMs !== null) this.#ttl = true;
              let list = byValue.get(v);
              if (list === undefined) byValue.set(v, (list = []));
              list.push({ row, version: item.version, expiresAtMs: item.expiresAtMs });
            }
            for (const [v, list] of byValue) {
              appendRows(appenders.get(v)!, this.#columns, list);
              this.#appended += list.length;
            }
            cursor = page.cursor;
          } while (cursor !== undefined);
        } finally {
          for (const a of appenders.values()) {
            a.flushSync();
            a.closeSync();
          }
        }
        const h1 = await this.#host.feed.heads();
        for (const s of this.#host.shards) {
          await c.run(`UPDATE pp.positions SET pos = ${h0[s] ?? 0}, exact_after = ${h1[s] ?? 0} WHERE mirror = ${lit(this.name)} AND shard = ${lit(s)}`);
        }
        if (this.#ttl) await c.run(`UPDATE pp.mirrors SET ttl = true WHERE name = ${lit(this.name)}`);
        await c.run(viewSql(this.def, this.#columns, this.#layout, this.#ttl));
        await c.run('COMMIT');
        this.#host.viewChanged();
        for (const s of this.#host.shards) {
          this.#pos[s] = h0[s] ?? 0;
          this.#exactAfter[s] = h1[s] ?? 0;
        }
      } catch (err) {
        await c.run('ROLLBACK').catch(() => undefined);
        for (const v of created) this.#layout.forget(v);
        throw err;
      }
    });
  }

  #applied(shard: string): number {
    return Math.max(this.#pos[shard] ?? 0, this.#sub?.positions()[shard] ?? 0);
  }

  /**
   * Re-checks waits while any are pending: positions also advance past records of other tables,
   * which never reach the handler.
   */
  #waitTimer: NodeJS.Timeout | undefined;

  #checkWaiters(): void {
    if (this.#waiters.size > 0 && this.#waitTimer === undefined) {
      this.#waitTimer = setInterval(() => this.#checkWaiters(), WAIT_RECHECK_MS);
      this.#waitTimer.unref();
    } else if (this.#waiters.size === 0 && this.#waitTimer !== undefined) {
      clearInterval(this.#waitTimer);
      this.#waitTimer = undefined;
    }
    for (const w of this.#waiters) {
      if (Object.entries(w.target).every(([s, p]) => this.#applied(s) >= p)) {
        clearTimeout(w.timer);
        this.#waiters.delete(w);
        w.resolve();
      }
    }
  }

  /**
   * Resolves once the mirror has applied the given write (a store WriteResult: shard + position)
   * or positions; rejects with PP_ERR_TIMEOUT after `timeoutMs` (default 10 s), or with the stop.
   */
  waitFor(target: { readonly shard: string; readonly position: number } | Positions, timeoutMs = 10_000): Promise<void> {
    requireArg(Number.isFinite(timeoutMs) && timeoutMs >= 0 && timeoutMs <= WAIT_MS_MAX, 'timeoutMs', `must be in [0, ${WAIT_MS_MAX}]`);
    const positions: Positions = typeof target.shard === 'string' && typeof target.position === 'number' ? { [target.shard]: target.position } : (target as Positions);
    for (const [s, p] of Object.entries(positions)) {
      requireArg(this.#host.shards.includes(s), 'shard', `unknown shard ${JSON.stringify(s)}`);
      requireArg(Number.isSafeInteger(p) && p >= 0, `positions.${s}`, 'must be an integer >= 0');
    }
    if (this.#state !== 'running') return Promise.reject(this.#error ?? ppError('PP_ERR_MIRROR_STOPPED', { message: `mirror ${this.name} is closed` }));
    if (Object.entries(positions).every(([s, p]) => this.#applied(s) >= p)) return Promise.resolve();
    if (this.#waiters.size >= WAITERS_MAX) return Promise.reject(ppError('PP_ERR_OVERLOADED', { message: `mirror ${this.name}: more than ${WAITERS_MAX} waits pending` }));
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        target: positions,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters.delete(w);
          this.#checkWaiters();
          reject(ppError('PP_ERR_TIMEOUT', { message: `mirror ${this.name}: not caught up with ${JSON.stringify(positions)} after ${timeoutMs} ms` }));
        }, timeoutMs),
      };
      this.#waiters.add(w);
      this.#checkWaiters();
    });
  }

  /** How far behind the store the mirror is: feed records not yet seen, and the oldest one's age. */
  async lag(): Promise<MirrorLag> {
    const heads = await this.#host.feed.heads();
    const shards: Record<string, number> = {};
    let records = 0;
    let oldest = Infinity;
    for (const s of this.#host.shards) {
      const applied = this.#applied(s);
      const behind = Math.max(0, (heads[s] ?? 0) - applied);
      shards[s] = behind;
      records += behind;
      if (behind > 0) {
        const next = await this.#host.feed.read(s, applied, 1);
        if (next[0] !== undefined) oldest = Math.min(oldest, next[0].committedAtMs);
      }
    }
    return { records, shards, ms: oldest === Infinity ? 0 : Math.max(0, Date.now() - oldest) };
  }

  stats(): MirrorStats {
    const n = Math.min(this.#freshN, FRESHNESS_SAMPLES);
    const xs = Array.from(this.#fresh.subarray(0, n)).sort((a, b) => a - b);
    const at = (p: number): number => (n === 0 ? 0 : xs[Math.min(n - 1, Math.floor(p * n))]!);
    return {
      state: this.#state,
      error: this.#error,
      records: this.#records,
      batches: this.#batches,
      rowsAppended: this.#appended,
      keysDeleted: this.#deleted,
      positions: { ...this.#pos },
      partitions: this.#layout.partitions.length,
      freshnessMs: { samples: n, p50: at(0.5), p99: at(0.99), max: n === 0 ? 0 : xs[n - 1]! },
    };
  }

  /** The partitions (for explain and archive). */
  get layout(): Layout {
    return this.#layout;
  }

  /** Whether the view filters expired rows. */
  get ttl(): boolean {
    return this.#ttl;
  }

  /** Stops following (after the batch in progress). Its data stays in the DuckDB file; queries name only open mirrors. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    const wasRunning = this.#state === 'running';
    this.#state = 'closed';
    if (wasRunning) this.#error = ppError('PP_ERR_MIRROR_STOPPED', { message: `mirror ${this.name} is closed` });
    for (const w of this.#waiters) {
      clearTimeout(w.timer);
      w.reject(this.#error);
    }
    this.#waiters.clear();
    this.#checkWaiters();
    await this.#sub?.close();
    this.#host.forget(this.name);
  }
}

/** A record key as a map key: JSON, bytes by their content. */
function keyString(key: readonly unknown[]): string {
  // One string or number column (most tables): the value itself, tagged by type (1 and "1" differ).
  if (key.length === 1) {
    const k = key[0];
    if (typeof k === 'string') return `s${k}`;
    if (typeof k === 'number') return `n${k}`;
  }
  return JSON.stringify(key, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v));
}

/**
 * Applies a table's additive changes to an existing mirror (new nullable columns become columns of
 * every live partition); anything else is PP_ERR_INCOMPATIBLE_SCHEMA naming what changed.
 */
async function evolve(c: DuckDBConnection, name: string, prev: TableDef, next: TableDef, parts: readonly Partition[]): Promise<void> {
  const bad = (message: string): never => {
    throw ppError('PP_ERR_INCOMPATIBLE_SCHEMA', { field: 'table', message: `mirror ${name}: ${message}; drop the mirror to rebuild it`, data: { mirror: name } });
  };
  if (JSON.stringify(prev.primaryKey) !== JSON.stringify(next.primaryKey)) bad('the primary key changed');
  const nextCols = new Map(next.columns.map((col) => [col.name, col]));
  for (const col of prev.columns) {
    const n = nextCols.get(col.name);
    if (n === undefined) bad(`column "${col.name}" is gone`);
    else if (n.type !== col.type) bad(`column "${col.name}" changed type (${col.type} -> ${n.type})`);
  }
  const prevNames = new Set(prev.columns.map((col) => col.name));
  const added = next.columns.filter((col) => !prevNames.has(col.name));
  if (added.length === 0) return;
  await c.run('BEGIN');
  try {
    // Rebuilt rather than ALTERed: ADD COLUMN would put the column after _v and _exp, and the
    // appender appends in the table's column order, which must be the definition's in every partition.
    const cols = next.columns.map((col) => (prevNames.has(col.name) ? q(col.name) : `CAST(NULL AS ${duckType(col)}) AS ${q(col.name)}`));
    for (const p of parts) {
      if (p.table === undefined) continue;
      const tmp = `${name}__evolve`;
      await c.run(`CREATE TABLE pp.${q(tmp)} AS SELECT ${cols.join(', ')}, "_v", "_exp" FROM pp.${q(p.table)}`);
      await c.run(`DROP TABLE pp.${q(p.table)}`);
      await c.run(`ALTER TABLE pp.${q(tmp)} RENAME TO ${q(p.table)}`);
    }
    await c.run(`UPDATE pp.mirrors SET def = ${lit(JSON.stringify(next))} WHERE name = ${lit(name)}`);
    await c.run('COMMIT');
  } catch (err) {
    await c.run('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

