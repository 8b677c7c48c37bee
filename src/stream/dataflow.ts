/**
 * The typed dataflow builder: a source topic, stateless steps (map, filter, flatMap), `keyBy`, an
 * event-time window with an aggregate, and sinks (a store table, a topic, a callback). Each step
 * returns a new stage whose element type is the step's output, so types flow from the source's
 * message type to the sink's row type and `tsc` checks them. The builder only records a plan;
 * `job.ts` runs it.
 */
import type { Table } from '../store/index.js';
import { requireArg } from '../errors/index.js';
import type { Aggregator, WindowOptions, WindowResult, WindowSpec } from './windows.js';

/** What a source's timestamp extractor sees besides the message value. */
export interface SourceMeta {
  readonly partition: number;
  readonly offset: number;
  readonly key: string | undefined;
  /** Append time of the record, epoch ms. */
  readonly appendedAtMs: number;
}

export interface SourceOptions<T> {
  /** Event time of a record, epoch ms (a finite number; anything else dead-letters the record). Default: its append time. */
  readonly timestamp?: (value: T, meta: SourceMeta) => number;
}

/** A stateless step. */
export type Step = { readonly kind: 'map'; readonly fn: (v: unknown) => unknown } | { readonly kind: 'filter'; readonly fn: (v: unknown) => boolean } | { readonly kind: 'flatMap'; readonly fn: (v: unknown) => Iterable<unknown> };

export type KeyValue = string | number;

export interface KeyByOptions {
  /**
   * 'source' (default): the key must be the one the source records were published with
   * (`String(key)` hashes to the record's partition), so each key's state lives in one partition
   * and one task; a record whose key belongs to another partition is dead-lettered. 'partition':
   * the key is scoped to its source partition (one result per key per partition; `partition` is
   * on every result), for keys that do not follow the topic's partitioning.
   */
  readonly scope?: 'source' | 'partition';
}

/** A record that left the main path: late for all its windows, or refused with a reason. */
export interface SideRecord {
  readonly partition: number;
  readonly offset: number;
  /** Its place among the side records of that input record (a flatMap may produce several). */
  readonly seq: number;
  /** The catalogue code, or 'late'. */
  readonly code: string;
  readonly reason: string;
  /** The value at the step that refused it (as far as it serializes). */
  readonly value: unknown;
  /** Event time, when one was read. */
  readonly ts: number | undefined;
}

/** A window result with its source partition (where the task that computed it runs). */
export type Result<K, R> = WindowResult<K, R> & { readonly partition: number };

export type Sink<R> =
  | { readonly kind: 'table'; readonly table: Table<Record<string, unknown>>; readonly row: (r: R) => Record<string, unknown> }
  | { readonly kind: 'topic'; readonly topic: string; readonly message: (r: R) => { key?: string; value: unknown } }
  | { readonly kind: 'callback'; readonly fn: (r: R) => void | Promise<void> };

export interface Plan {
  readonly topic: string;
  readonly timestamp: ((value: unknown, meta: SourceMeta) => number) | undefined;
  readonly steps: readonly Step[];
  readonly keyBy: ((v: unknown) => KeyValue) | undefined;
  readonly keyScope: 'source' | 'partition';
  readonly window: WindowSpec | undefined;
  readonly windowOptions: WindowOptions;
  readonly aggregate: Aggregator<unknown, unknown, unknown> | undefined;
  readonly sinks: Sink<unknown>[];
  readonly late: Sink<SideRecord>[];
}

/** The builder's mutable draft, owned by the job. */
export interface Draft {
  plan: Plan | undefined;
  readonly sealed: () => boolean;
}

function put(d: Draft, p: Plan): void {
  requireArg(!d.sealed(), 'job', 'the dataflow cannot change once the job started');
  d.plan = p;
}

/** A stream of `T` (before keyBy): stateless steps, then keyBy or a sink. */
export class Stream<T> {
  readonly #d: Draft;
  readonly #p: Plan;
  /** Use `job.from`. */
  constructor(d: Draft, p: Plan) {
    this.#d = d;
    this.#p = p;
  }
  #with(step: Step): Plan {
    requireArg(typeof step.fn === 'function', step.kind, 'must be a function');
    return { ...this.#p, steps: [...this.#p.steps, step] };
  }
  map<U>(fn: (v: T) => U): Stream<U> {
    const p = this.#with({ kind: 'map', fn: fn as (v: unknown) => unknown });
    put(this.#d, p);
    return new Stream<U>(this.#d, p);
  }
  filter(fn: (v: T) => boolean): Stream<T> {
    const p = this.#with({ kind: 'filter', fn: fn as (v: unknown) => boolean });
    put(this.#d, p);
    return new Stream<T>(this.#d, p);
  }
  flatMap<U>(fn: (v: T) => Iterable<U>): Stream<U> {
    const p = this.#with({ kind: 'flatMap', fn: fn as (v: unknown) => Iterable<unknown> });
    put(this.#d, p);
    return new Stream<U>(this.#d, p);
  }
  /** Keys the stream for windows and keyed state (see KeyByOptions for where a key's state lives). */
  keyBy<K extends KeyValue>(fn: (v: T) => K, options: KeyByOptions = {}): KeyedStream<K, T> {
    requireArg(typeof fn === 'function', 'keyBy', 'must be a function');
    const scope = options.scope ?? 'source';
    requireArg(scope === 'source' || scope === 'partition', 'scope', "must be 'source' or 'partition'");
    const p: Plan = { ...this.#p, keyBy: fn as (v: unknown) => KeyValue, keyScope: scope };
    put(this.#d, p);
    return new KeyedStream<K, T>(this.#d, p);
  }
}

export class KeyedStream<K extends KeyValue, T> {
  readonly #d: Draft;
  readonly #p: Plan;
  constructor(d: Draft, p: Plan) {
    this.#d = d;
    this.#p = p;
  }
  /** Event-time windows (`tumbling`, `sliding`, `session`) with their watermark and lateness options. */
  window(spec: WindowSpec, options: WindowOptions = {}): WindowedStream<K, T> {
    requireArg(typeof spec === 'object' && spec !== null && ['tumbling', 'sliding', 'session'].includes(spec.kind), 'window', 'must be tumbling(…), sliding(…) or session(…)');
    const p: Plan = { ...this.#p, window: spec, windowOptions: options };
    put(this.#d, p);
    return new WindowedStream<K, T>(this.#d, p);
  }
}

export class WindowedStream<K extends KeyValue, T> {
  readonly #d: Draft;
  readonly #p: Plan;
  constructor(d: Draft, p: Plan) {
    this.#d = d;
    this.#p = p;
  }
  /** Records late for every window they belong to (and nothing else) go to `sink` as well as being counted. */
  lateTo(sink: Sink<SideRecord>): WindowedStream<K, T> {
    const p: Plan = { ...this.#p, late: [...this.#p.late, sink] };
    put(this.#d, p);
    return new WindowedStream<K, T>(this.#d, p);
  }
  aggregate<A, R>(agg: Aggregator<T, A, R>): Results<Result<K, R>> {
    requireArg(typeof agg === 'object' && agg !== null && typeof agg.init === 'function' && typeof agg.add === 'function' && typeof agg.result === 'function', 'aggregate', 'must have init, add and result functions');
    const p: Plan = { ...this.#p, aggregate: agg as Aggregator<unknown, unknown, unknown> };
    put(this.#d, p);
    return new Results<Result<K, R>>(this.#d, p);
  }
  /** Folds a window's values with `fn` (sessions merge with it too). */
  reduce(fn: (a: T, b: T) => T): Results<Result<K, T>> {
    return this.aggregate<{ v: T } | null, T>({
      init: () => null,
      add: (acc, v) => (acc === null ? { v } : { v: fn(acc.v, v) }),
      merge: (a, b) => (a === null ? b : b === null ? a : { v: fn(a.v, b.v) }),
      result: (acc) => acc!.v,
    });
  }
  /**
   * A windowed join of two keyed streams: the source's records of two kinds (`isLeft` tells them
   * apart: e.g. Nexmark's persons and auctions, both keyed by the person), and at each firing of a
   * window every (left, right) pair of its key in it, as `pair(l, r)`, at most JOIN_PAIRS_MAX per
   * result (more are counted in `dropped`). Two topics are joined by publishing both into one
   * (an outbox, or the producers), keyed alike.
   */
  join<O>(isLeft: (v: T) => boolean, pair: (l: T, r: T) => O): Results<Result<K, JoinResult<O>>> {
    return this.aggregate(joinAggregator(isLeft, pair));
  }
  count(): Results<Result<K, number>> {
    return this.aggregate<number, number>({ init: () => 0, add: (n) => n + 1, merge: (a, b) => a + b, result: (n) => n });
  }
}

/** Window results: send them to one or more sinks. */
export class Results<R> {
  readonly #d: Draft;
  readonly #p: Plan;
  constructor(d: Draft, p: Plan) {
    this.#d = d;
    this.#p = p;
  }
  #add(s: Sink<unknown>): Results<R> {
    const p: Plan = { ...this.#p, sinks: [...this.#p.sinks, s] };
    put(this.#d, p);
    return new Results<R>(this.#d, p);
  }
  /**
   * Upserts `row(result)` into a table of the job's store, exactly once: in the same atomic store
   * request as the job's state and input offsets (per shard; see docs/stream.md). A retracted
   * result (a session merged into another) deletes its row.
   */
  toTable<Row extends Record<string, unknown>>(table: Table<Row>, row: (r: R) => Row): Results<R> {
    requireArg(typeof row === 'function', 'row', 'must be a function');
    return this.#add({ kind: 'table', table: table as unknown as Table<Record<string, unknown>>, row: row as (r: unknown) => Record<string, unknown> });
  }
  /** Publishes each result after its checkpoint committed (at least once; the message id dedups replays). */
  toTopic(topic: string, message: (r: R) => { key?: string; value: unknown }): Results<R> {
    requireArg(typeof message === 'function', 'message', 'must be a function');
    return this.#add({ kind: 'topic', topic, message: message as (r: unknown) => { key?: string; value: unknown } });
  }
  /** Calls `fn` with each result after its checkpoint committed (at least once). */
  toCallback(fn: (r: R) => void | Promise<void>): Results<R> {
    requireArg(typeof fn === 'function', 'fn', 'must be a function');
    return this.#add({ kind: 'callback', fn: fn as (r: unknown) => void });
  }
}

/** Most pairs one join result carries. */
export const JOIN_PAIRS_MAX = 10_000;

export interface JoinResult<O> {
  readonly pairs: O[];
  /** Pairs beyond JOIN_PAIRS_MAX, not in `pairs`. */
  readonly dropped: number;
}

/** The join as an aggregator: the window keeps both sides' values; a firing pairs them (left order, then right order). */
export function joinAggregator<T, O>(isLeft: (v: T) => boolean, pair: (l: T, r: T) => O): Aggregator<T, { l: T[]; r: T[] }, JoinResult<O>> {
  requireArg(typeof isLeft === 'function', 'isLeft', 'must be a function');
  requireArg(typeof pair === 'function', 'pair', 'must be a function');
  return {
    init: () => ({ l: [], r: [] }),
    // A new accumulator (the side that grew copied), so a record over the state bound is refused exactly.
    add: (a, v) => (isLeft(v) ? { l: [...a.l, v], r: a.r } : { l: a.l, r: [...a.r, v] }),
    merge: (a, b) => ({ l: [...a.l, ...b.l], r: [...a.r, ...b.r] }),
    result: (a) => {
      const pairs: O[] = [];
      let dropped = 0;
      for (const l of a.l) {
        for (const r of a.r) {
          if (pairs.length < JOIN_PAIRS_MAX) pairs.push(pair(l, r));
          else dropped++;
        }
      }
      return { pairs, dropped };
    },
  };
}

/** Common aggregators. */
export const aggregators = {
  sum<T>(of: (v: T) => number): Aggregator<T, number, number> {
    return { init: () => 0, add: (a, v) => a + of(v), merge: (a, b) => a + b, result: (a) => a };
  },
  max<T>(of: (v: T) => number): Aggregator<T, number | null, number> {
    return { init: () => null, add: (a, v) => (a === null ? of(v) : Math.max(a, of(v))), merge: (a, b) => (a === null ? b : b === null ? a : Math.max(a, b)), result: (a) => a ?? Number.NaN };
  },
  count<T>(): Aggregator<T, number, number> {
    return { init: () => 0, add: (a) => a + 1, merge: (a, b) => a + b, result: (a) => a };
  },
};
