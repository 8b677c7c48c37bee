/**
 * Phi accrual failure detector (Hayashibara, Défago, Yared, Katayama, SRDS 2004), as in Akka and
 * Cassandra. Instead of a yes/no timeout it outputs phi = -log10(P(a heartbeat arrives later than
 * now | the node is alive)), with inter-arrival times modelled as a NORMAL distribution whose mean
 * and standard deviation are estimated from the last `samplesMax` intervals. phi = 1 means a 10%
 * chance the node is merely late, phi = 3 means 0.1%, phi = 8 means 1e-8.
 *
 * The normal CDF uses the logistic approximation Akka uses (error < 1e-4 over the whole line):
 *   F(y) ~ 1 / (1 + exp(-x)),  x = y * (1.5976 + 0.070566 * y^2),  y = (elapsed - mean) / stdDev
 * so phi = -log10(1 - F(y)) = log10(1 + exp(x)), computed in a form that cannot overflow and is
 * non-decreasing in elapsed (so a silent node's phi only grows).
 *
 * Status: 'dead' if silent for >= deadAfterMs OR phi >= deadPhi; else 'suspect' if phi >= suspectPhi;
 * else 'alive'. The hard `deadAfterMs` bound is what the registry can rely on: whatever the history
 * (a node that used to be slow has a wide distribution and a slowly growing phi), a node silent for
 * deadAfterMs is dead.
 *
 * Memory per node: one Float64Array(samplesMax) ring and a few numbers; node count is bounded by
 * nodesMax. No timers: status is evaluated on demand (`status`, `check`) from the injected clock.
 */
import { invariant, ppError, requireArg } from '../errors/index.js';
import { renamedOptions } from '../util/index.js';
import { monotonicClock, type Clock } from './clock.js';

export type NodeStatus = 'alive' | 'suspect' | 'dead';

export interface NodeStatusChange {
  readonly nodeId: string;
  readonly from: NodeStatus;
  readonly to: NodeStatus;
  readonly phi: number;
  readonly atMs: number;
  /** Silence at the time of the change (ms since the last heartbeat). */
  readonly silentMs: number;
}

export interface FailureDetectorOptions {
  /** phi at which a node becomes 'suspect'. Default 3 (0.1% chance it is just late). */
  suspectPhi?: number;
  /** phi at which a node becomes 'dead'. Default 8 (Akka's and Cassandra's conviction threshold). */
  deadPhi?: number;
  /** Hard bound: silent this long => 'dead' whatever phi says. Default 10_000 ms. */
  deadAfterMs?: number;
  /** Intervals kept per node (ring buffer). Default 200. */
  samplesMax?: number;
  /** Floor for the estimated std-dev, so a perfectly regular sender is not convicted by jitter. Default 100 ms. */
  stdDevMsMin?: number;
  /** Added to the mean: a pause (GC, network blip) of this size raises phi little. Default 0 ms. */
  acceptablePauseMs?: number;
  /** Expected interval before any is measured (seeds the history as mean ± mean/4). Default 1_000 ms. */
  firstHeartbeatEstimateMs?: number;
  /** Nodes tracked at most; heartbeats from more are refused with PP_ERR_TOO_LARGE. Default 100_000. */
  nodesMax?: number;
  /** Called synchronously on every status transition observed by heartbeat/status/check. Must not throw. */
  onStatusChange?: (change: NodeStatusChange) => void;
  clock?: Clock;
  /** @deprecated use samplesMax */
  maxSamples?: number;
  /** @deprecated use stdDevMsMin */
  minStdDevMs?: number;
  /** @deprecated use nodesMax */
  maxNodes?: number;
}

const ALIVE = 0;
const SUSPECT = 1;
const DEAD = 2;
const STATUS_NAMES: readonly NodeStatus[] = ['alive', 'suspect', 'dead'];

/** A time passed in by the caller: NaN would poison a node's history (every later interval NaN). */
function checkNow(nowMs: number): void {
  requireArg(Number.isFinite(nowMs), 'nowMs', 'must be a finite number (ms on the detector\'s clock)');
}

/** Softplus in base 10: log10(1 + e^x), without overflow for large x. Non-decreasing in x. */
function log10OnePlusExp(x: number): number {
  return (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x))) / Math.LN10;
}

/** phi for `elapsedMs` of silence given the interval distribution (normal, logistic approximation). */
export function phiNormal(elapsedMs: number, meanMs: number, stdDevMs: number): number {
  const y = (elapsedMs - meanMs) / stdDevMs;
  return log10OnePlusExp(y * (1.5976 + 0.070566 * y * y));
}

/** Inverse of phiNormal: the silence at which phi reaches `phi` (solves the cubic in y by Cardano). */
export function elapsedForPhiNormal(phi: number, meanMs: number, stdDevMs: number): number {
  if (phi === Infinity) return Infinity;
  // phi = log10(1 + e^x)  =>  x = ln(10^phi - 1); expm1 keeps precision for small phi.
  const x = Math.log(Math.expm1(phi * Math.LN10));
  // 0.070566 y^3 + 1.5976 y - x = 0  =>  y^3 + p y + q = 0, p > 0: exactly one real root.
  const p = 1.5976 / 0.070566;
  const q = -x / 0.070566;
  const d = Math.sqrt((q * q) / 4 + (p * p * p) / 27);
  const y = Math.cbrt(-q / 2 + d) + Math.cbrt(-q / 2 - d);
  return meanMs + y * stdDevMs;
}

/** Heartbeat history of one node: a ring of inter-arrival times with running sums. */
class NodeHistory {
  readonly intervals: Float64Array;
  private head = 0;
  count = 0;
  private sum = 0;
  private sumSq = 0;
  lastMs: number;
  status = ALIVE;

  constructor(samplesMax: number, nowMs: number, firstEstimateMs: number) {
    this.intervals = new Float64Array(samplesMax);
    this.lastMs = nowMs;
    // Akka's seeding: two samples at mean ± mean/4 give the first estimate a sensible spread.
    const spreadMs = firstEstimateMs / 4;
    this.add(firstEstimateMs - spreadMs);
    this.add(firstEstimateMs + spreadMs);
  }

  add(intervalMs: number): void {
    const n = this.intervals.length;
    if (this.count === n) {
      const old = this.intervals[this.head] as number;
      this.sum -= old;
      this.sumSq -= old * old;
    } else {
      this.count++;
    }
    this.intervals[this.head] = intervalMs;
    this.sum += intervalMs;
    this.sumSq += intervalMs * intervalMs;
    this.head = this.head + 1 === n ? 0 : this.head + 1;
    // Running sums drift under add/subtract; recomputing once per lap keeps the cost O(1)
    // amortised and the error from accumulating over days of heartbeats.
    if (this.head === 0) this.recompute();
  }

  private recompute(): void {
    let sum = 0;
    let sumSq = 0;
    for (let i = 0; i < this.count; i++) {
      const v = this.intervals[i] as number;
      sum += v;
      sumSq += v * v;
    }
    this.sum = sum;
    this.sumSq = sumSq;
  }

  mean(): number {
    return this.sum / this.count;
  }

  stdDev(): number {
    const mean = this.mean();
    // Clamp: sumSq/n - mean^2 can come out a hair below zero in floating point.
    return Math.sqrt(Math.max(0, this.sumSq / this.count - mean * mean));
  }
}

export class FailureDetector {
  readonly suspectPhi: number;
  readonly deadPhi: number;
  readonly deadAfterMs: number;
  readonly samplesMax: number;
  readonly stdDevMsMin: number;
  readonly acceptablePauseMs: number;
  readonly firstHeartbeatEstimateMs: number;
  readonly nodesMax: number;
  private readonly onStatusChange: ((change: NodeStatusChange) => void) | undefined;
  private readonly clock: Clock;
  private readonly histories = new Map<string, NodeHistory>();

  constructor(options: FailureDetectorOptions = {}) {
    const {
      suspectPhi = 3, deadPhi = 8, deadAfterMs = 10_000, samplesMax = 200, stdDevMsMin = 100, acceptablePauseMs = 0,
      firstHeartbeatEstimateMs = 1_000, nodesMax = 100_000, onStatusChange, clock = monotonicClock,
    } = renamedOptions(options, { samplesMax: 'maxSamples', stdDevMsMin: 'minStdDevMs', nodesMax: 'maxNodes' });
    requireArg(suspectPhi > 0, 'suspectPhi', 'must be > 0');
    requireArg(deadPhi >= suspectPhi, 'deadPhi', 'must be >= suspectPhi');
    requireArg(deadAfterMs > 0, 'deadAfterMs', 'must be > 0 (use Infinity to rely on phi alone)');
    requireArg(Number.isInteger(samplesMax) && samplesMax >= 2 && samplesMax <= 100_000, 'samplesMax', 'must be an integer in [2, 100000]');
    requireArg(stdDevMsMin > 0 && Number.isFinite(stdDevMsMin), 'stdDevMsMin', 'must be a finite number > 0');
    requireArg(acceptablePauseMs >= 0 && Number.isFinite(acceptablePauseMs), 'acceptablePauseMs', 'must be a finite number >= 0');
    requireArg(firstHeartbeatEstimateMs > 0 && Number.isFinite(firstHeartbeatEstimateMs), 'firstHeartbeatEstimateMs', 'must be a finite number > 0');
    requireArg(Number.isInteger(nodesMax) && nodesMax >= 1, 'nodesMax', 'must be an integer >= 1');
    this.suspectPhi = suspectPhi;
    this.deadPhi = deadPhi;
    this.deadAfterMs = deadAfterMs;
    this.samplesMax = samplesMax;
    this.stdDevMsMin = stdDevMsMin;
    this.acceptablePauseMs = acceptablePauseMs;
    this.firstHeartbeatEstimateMs = firstHeartbeatEstimateMs;
    this.nodesMax = nodesMax;
    this.onStatusChange = onStatusChange;
    this.clock = clock;
  }

  /**
   * Records a heartbeat from `nodeId` (starting to track it if new) and marks it alive. An interval
   * longer than deadAfterMs is not added to the history: the node was down, and that gap is not a
   * heartbeat interval; adding it would blunt detection for the next samplesMax beats.
   */
  heartbeat(nodeId: string, nowMs: number = this.clock.now()): void {
    checkNow(nowMs);
    const history = this.histories.get(nodeId);
    if (history === undefined) {
      if (this.histories.size >= this.nodesMax) {
        throw ppError('PP_ERR_TOO_LARGE', { field: 'nodeId', message: `failure detector tracks at most ${this.nodesMax} nodes (nodesMax)` });
      }
      this.histories.set(nodeId, new NodeHistory(this.samplesMax, nowMs, this.firstHeartbeatEstimateMs));
      return;
    }
    const intervalMs = nowMs - history.lastMs;
    // Duplicate or reordered heartbeats (interval <= 0) carry no timing information.
    if (intervalMs <= 0) return;
    if (intervalMs < this.deadAfterMs) history.add(intervalMs);
    history.lastMs = nowMs;
    this.setStatus(nodeId, history, ALIVE, nowMs);
  }

  /** phi for `nodeId` now; throws PP_ERR_NOT_FOUND for an unknown node. */
  phi(nodeId: string, nowMs: number = this.clock.now()): number {
    checkNow(nowMs);
    return this.phiOf(this.get(nodeId), nowMs);
  }

  /** Evaluates (and, if changed, reports) the status of `nodeId`; PP_ERR_NOT_FOUND if unknown. */
  status(nodeId: string, nowMs: number = this.clock.now()): NodeStatus {
    checkNow(nowMs);
    const history = this.get(nodeId);
    this.setStatus(nodeId, history, this.evaluate(history, nowMs), nowMs);
    return STATUS_NAMES[history.status] as NodeStatus;
  }

  /** Re-evaluates every node, firing the listener for each transition. Call it every checkIntervalMs. */
  check(nowMs: number = this.clock.now()): void {
    checkNow(nowMs);
    for (const [nodeId, history] of this.histories) this.setStatus(nodeId, history, this.evaluate(history, nowMs), nowMs);
  }

  /**
   * Silence after the last heartbeat at which `nodeId` will be declared dead, given its history now:
   * min(deadAfterMs, silenceForPhiMs(nodeId, deadPhi)). Never more than deadAfterMs.
   */
  detectionMs(nodeId: string): number {
    return Math.min(this.deadAfterMs, this.silenceForPhiMs(nodeId, this.deadPhi));
  }

  /** Silence after the last heartbeat at which phi reaches `phi`, given the node's history now. */
  silenceForPhiMs(nodeId: string, phi: number): number {
    const history = this.get(nodeId);
    const stdDevMs = Math.max(history.stdDev(), this.stdDevMsMin);
    return Math.max(0, elapsedForPhiNormal(phi, history.mean() + this.acceptablePauseMs, stdDevMs));
  }

  has(nodeId: string): boolean {
    return this.histories.has(nodeId);
  }

  /** Stops tracking `nodeId`; true if it was tracked. Fires no event. */
  remove(nodeId: string): boolean {
    return this.histories.delete(nodeId);
  }

  /** Tracked node ids. */
  nodes(): string[] {
    return [...this.histories.keys()];
  }

  /** Estimated mean and std-dev of the node's intervals (for dashboards). */
  stats(nodeId: string): { samples: number; meanMs: number; stdDevMs: number; lastHeartbeatMs: number } {
    const h = this.get(nodeId);
    return { samples: h.count, meanMs: h.mean(), stdDevMs: h.stdDev(), lastHeartbeatMs: h.lastMs };
  }

  private get(nodeId: string): NodeHistory {
    const history = this.histories.get(nodeId);
    if (history === undefined) throw ppError('PP_ERR_NOT_FOUND', { field: 'nodeId', message: `failure detector: unknown node '${nodeId}'` });
    return history;
  }

  private phiOf(history: NodeHistory, nowMs: number): number {
    // A clock behind the last heartbeat is treated as no silence at all.
    const elapsedMs = Math.max(0, nowMs - history.lastMs);
    return phiNormal(elapsedMs, history.mean() + this.acceptablePauseMs, Math.max(history.stdDev(), this.stdDevMsMin));
  }

  private evaluate(history: NodeHistory, nowMs: number): number {
    if (nowMs - history.lastMs >= this.deadAfterMs) return DEAD;
    const phi = this.phiOf(history, nowMs);
    if (phi >= this.deadPhi) return DEAD;
    if (phi >= this.suspectPhi) return SUSPECT;
    return ALIVE;
  }

  private setStatus(nodeId: string, history: NodeHistory, to: number, nowMs: number): void {
    const from = history.status;
    if (from === to) return;
    history.status = to;
    invariant(to >= ALIVE && to <= DEAD, 'failure detector status code in range');
    this.onStatusChange?.({
      nodeId, from: STATUS_NAMES[from] as NodeStatus, to: STATUS_NAMES[to] as NodeStatus, phi: this.phiOf(history, nowMs), atMs: nowMs,
      silentMs: Math.max(0, nowMs - history.lastMs),
    });
  }
}
