/**
 * Endpoint state shared by every balancing strategy: membership, weight, in-flight count and a
 * latency EWMA. The service runtime owns one `EndpointSet` per action; it calls `onStart` before a
 * call leaves and `onFinish` when it completes, and the strategies read the counters in `pick()`.
 *
 * Endpoints live in a dense array in insertion order (`index` is the position). Order is kept on
 * removal (splice, O(n)) because round-robin order and the weighted-round-robin sequence are
 * defined by it; membership changes are rare next to picks. Every change to membership or weight
 * bumps `version`, and strategies that precompute (ring, current weights) rebuild lazily on the
 * next pick when they see a new version.
 */
import { invariant, ppError, requireArg } from '../errors/index.js';
import { renamedOptions } from '../util/index.js';

/** Read-only view of one endpoint. Mutate it only through the `EndpointSet` that owns it. */
export interface Endpoint {
  readonly id: string;
  /** Relative capacity, > 0. Weighted strategies send traffic in proportion to it. */
  readonly weight: number;
  /** Calls started and not yet finished. */
  readonly inFlight: number;
  /** Peak-sensitive, time-decayed latency average in ms (see `EndpointSet.onFinish`). */
  readonly latencyEwmaMs: number;
  /** Failed calls reported so far (informational; failures also raise the EWMA). */
  readonly failures: number;
  /** Caller data (address, node id, ...); never read by the strategies. */
  readonly meta: Readonly<Record<string, unknown>> | undefined;
  /** Position in the set, -1 once removed. */
  readonly index: number;
}

/** The mutable object behind `Endpoint`. Internal to `balance/`; strategies read it directly. */
export class EndpointState implements Endpoint {
  weight: number;
  inFlight = 0;
  latencyEwmaMs: number;
  failures = 0;
  index: number;
  /** Clock reading of the last latency sample; NaN before the first one. */
  lastSampleMs = Number.NaN;

  constructor(
    readonly id: string,
    weight: number,
    readonly meta: Readonly<Record<string, unknown>> | undefined,
    index: number,
    initialEwmaMs: number,
  ) {
    this.weight = weight;
    this.index = index;
    this.latencyEwmaMs = initialEwmaMs;
  }
}

export interface EndpointOptions {
  /** Relative capacity, > 0 and <= `WEIGHT_MAX`. Default 1. */
  weight?: number;
  meta?: Readonly<Record<string, unknown>>;
}

export interface EndpointSetOptions {
  /**
   * Time constant of the latency EWMA in ms (default 10,000, Finagle's default): a sample `dt` ms
   * after the previous one gets weight `1 - exp(-dt / ewmaDecayMs)`, so the average forgets at the
   * same speed whatever the call rate.
   */
  ewmaDecayMs?: number;
  /**
   * A failed call counts as a latency sample of `max(latencyMs, ewma) * failurePenalty` (default 4),
   * so an endpoint that fails fast does not look like the fastest one ("black hole" effect).
   */
  failurePenalty?: number;
  /** Clock in ms for the EWMA decay. Default `performance.now`. Simulations pass their own. */
  clockMs?: () => number;
  /** Upper bound on members (default 65,536; hard limit 2^21, the ring packs indices in 21 bits). */
  endpointsMax?: number;
  /** @deprecated use endpointsMax */
  maxEndpoints?: number;
}

export const WEIGHT_MAX = 1_000_000;
export const ENDPOINTS_MAX_LIMIT = 1 << 21;

export class EndpointSet {
  /** Members in insertion order. Internal: strategies iterate it without copying. */
  readonly list: EndpointState[] = [];
  /** Bumped on every add, remove and weight change. */
  version = 0;
  /** Sum of `inFlight` over current members (calls to removed endpoints are not counted). */
  totalInFlight = 0;
  /** Sum of weights over current members. */
  totalWeight = 0;

  readonly ewmaDecayMs: number;
  readonly failurePenalty: number;
  readonly endpointsMax: number;
  private readonly clockMs: () => number;
  private readonly byId = new Map<string, EndpointState>();

  constructor(given: EndpointSetOptions = {}) {
    const opts = renamedOptions(given, { endpointsMax: 'maxEndpoints' });
    const decay = opts.ewmaDecayMs ?? 10_000;
    requireArg(Number.isFinite(decay) && decay > 0, 'ewmaDecayMs', 'must be a finite number > 0');
    const penalty = opts.failurePenalty ?? 4;
    requireArg(Number.isFinite(penalty) && penalty >= 1, 'failurePenalty', 'must be a finite number >= 1');
    const max = opts.endpointsMax ?? 65_536;
    requireArg(Number.isInteger(max) && max >= 1 && max <= ENDPOINTS_MAX_LIMIT, 'endpointsMax', `must be an integer in [1, ${ENDPOINTS_MAX_LIMIT}]`);
    this.ewmaDecayMs = decay;
    this.failurePenalty = penalty;
    this.endpointsMax = max;
    this.clockMs = opts.clockMs ?? (() => performance.now());
  }

  get size(): number {
    return this.list.length;
  }

  /** Members in insertion order (the live array: do not mutate, copy if you keep it). */
  all(): readonly Endpoint[] {
    return this.list;
  }

  get(id: string): Endpoint | undefined {
    return this.byId.get(id);
  }

  /**
   * Adds an endpoint. A newcomer's EWMA starts at the members' mean EWMA so that it neither looks
   * free (0 ms would draw every latency-aware pick until its first reply) nor penalised.
   */
  add(id: string, opts: EndpointOptions = {}): Endpoint {
    requireArg(typeof id === 'string' && id.length > 0, 'id', 'must be a non-empty string');
    requireArg(!this.byId.has(id), 'id', `endpoint "${id}" is already in the set`);
    requireArg(this.list.length < this.endpointsMax, 'id', `the set is full (endpointsMax=${this.endpointsMax})`);
    const weight = opts.weight ?? 1;
    checkWeight(weight);
    let sum = 0;
    let n = 0;
    for (const ep of this.list) {
      if (!Number.isNaN(ep.lastSampleMs)) {
        sum += ep.latencyEwmaMs;
        n++;
      }
    }
    const ep = new EndpointState(id, weight, opts.meta, this.list.length, n === 0 ? 0 : sum / n);
    this.list.push(ep);
    this.byId.set(id, ep);
    this.totalWeight += weight;
    this.version++;
    return ep;
  }

  /**
   * Removes an endpoint; returns false if it was not a member. Calls still in flight to it may
   * finish later: `onFinish` accepts removed endpoints and leaves the set's totals alone.
   */
  remove(id: string): boolean {
    const ep = this.byId.get(id);
    if (ep === undefined) return false;
    this.byId.delete(id);
    this.list.splice(ep.index, 1);
    for (let i = ep.index; i < this.list.length; i++) (this.list[i] as EndpointState).index = i;
    ep.index = -1;
    this.totalInFlight -= ep.inFlight;
    this.totalWeight -= ep.weight;
    if (this.list.length === 0) this.totalWeight = 0; // drop float residue
    this.version++;
    invariant(this.totalInFlight >= 0, 'totalInFlight >= 0 after remove');
    return true;
  }

  /** Changes a member's weight; throws PP_ERR_NOT_FOUND for an unknown id. */
  setWeight(id: string, weight: number): void {
    checkWeight(weight);
    const ep = this.byId.get(id);
    if (ep === undefined) throw ppError('PP_ERR_NOT_FOUND', { field: 'id', message: `no endpoint "${id}" in the set` });
    this.totalWeight += weight - ep.weight;
    ep.weight = weight;
    this.version++;
  }

  /** A call to `ep` is leaving. Pair every `onStart` with exactly one `onFinish`. */
  onStart(ep: Endpoint): void {
    const s = ep as EndpointState;
    s.inFlight++;
    if (s.index >= 0) this.totalInFlight++;
  }

  /**
   * A call to `ep` finished after `latencyMs`. Updates the EWMA, Finagle "peak EWMA" style: a
   * sample above the average replaces it at once (a slowdown is seen on the first slow reply),
   * a sample below pulls it down with weight `1 - exp(-dt / ewmaDecayMs)`. A failed call is a
   * sample of `max(latencyMs, ewma) * failurePenalty`.
   */
  onFinish(ep: Endpoint, latencyMs: number, ok: boolean): void {
    const s = ep as EndpointState;
    invariant(s.inFlight > 0, `onFinish without onStart for endpoint "${s.id}"`);
    s.inFlight--;
    if (s.index >= 0) this.totalInFlight--;
    // A bad clock reading must not poison the average; negative latencies are clamped to 0.
    const lat = Number.isFinite(latencyMs) && latencyMs > 0 ? latencyMs : 0;
    let sample = lat;
    if (!ok) {
      s.failures++;
      sample = Math.max(lat, s.latencyEwmaMs) * this.failurePenalty;
    }
    const now = this.clockMs();
    if (Number.isNaN(s.lastSampleMs) || sample >= s.latencyEwmaMs) {
      s.latencyEwmaMs = sample;
    } else {
      const dt = now - s.lastSampleMs;
      const w = dt > 0 ? Math.exp(-dt / this.ewmaDecayMs) : 1;
      s.latencyEwmaMs = s.latencyEwmaMs * w + sample * (1 - w);
    }
    s.lastSampleMs = now;
  }
}

function checkWeight(weight: number): void {
  requireArg(typeof weight === 'number' && Number.isFinite(weight) && weight > 0 && weight <= WEIGHT_MAX, 'weight', `must be a finite number in (0, ${WEIGHT_MAX}]`);
}
