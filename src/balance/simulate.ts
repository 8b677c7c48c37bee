/**
 * A deterministic discrete-event simulation of the balancers in front of N heterogeneous servers.
 * Same seed, same options -> same numbers, on any machine (one seeded PRNG drives everything; the
 * EndpointSet's clock is the simulated clock).
 *
 * Model (see docs/balance.md for the reasoning):
 * - Server i has `concurrency` slots and a FIFO queue in front of them (a worker pool: M/G/c).
 *   Its base service time b_i is log-normal (median `medianLatencyMs`, spread `latencySigma`,
 *   clamped to [median/10, median*10]): a skewed fleet with a few very slow machines.
 * - A request's service time is b_i * slowdown * jitter, fixed when it enters a slot; jitter is
 *   log-normal with mean 1 (`jitterSigma`). Every `slowEveryMs`, a fresh random `slowFraction` of
 *   the servers become `slowFactor` times slower for `slowForMs` (GC pauses, noisy neighbours,
 *   a deploy): latencies change during the run and the balancers are not told.
 * - Arrivals are Poisson at `loadFactor` x the fleet's base capacity, sum(concurrency / b_i).
 *   Slowdowns take capacity away, so the real load is a little higher.
 * - The balancer sees what the runtime sees: in-flight counts and latencies of finished calls
 *   (`onStart` / `onFinish`). Latency = finish - arrival (queueing included).
 *   Weighted round-robin is given the true base capacities as weights (an operator knows machine
 *   sizes, not the slowdowns); the other strategies get weight 1 and must find speed themselves.
 *
 * Load, per server, is its time-averaged number of outstanding requests (queued + in service)
 * divided by its slots: occupancy. Below 1 it is the server's utilisation (by Little's law,
 * outstanding = arrival rate x service time, so equal occupancy = traffic in proportion to each
 * server's capacity c / b_i); above 1 the server is queueing. It is averaged over the measured
 * window: from the arrival of request M/10 (warm-up) to the last arrival (after it the offered
 * load stops). `maxOverMean` = the most loaded server's load / the mean load over servers.
 * The alternative, utilisation (busy slot-time / slot-time, capped at 1, blind to queues), is
 * reported beside it (`utilMaxOverMean`). With `warmupRequests` > 0 the run starts with that many
 * unmeasured requests and the window covers all M measured ones (a steady-state measurement).
 */
import { invariant, requireArg } from '../errors/index.js';
import { seededRandom, type TableCell } from '../util/index.js';
import type { BalancerName } from './base.js';
import { EndpointSet, type Endpoint } from './endpoint.js';
import { createBalancer, BALANCER_NAMES } from './registry.js';

export interface SimulateOptions {
  servers?: number; // default 100
  requests?: number; // default 20,000
  seed?: number; // default 1
  strategies?: readonly BalancerName[]; // default: all six
  concurrency?: number; // slots per server, default 8
  loadFactor?: number; // offered load / base capacity, default 0.85
  medianLatencyMs?: number; // default 10
  latencySigma?: number; // log-normal sigma of base latencies, default 0.6
  jitterSigma?: number; // log-normal sigma of per-request jitter, default 0.3
  slowEveryMs?: number; // default: a fifth of the expected run (requests / arrival rate)
  slowForMs?: number; // default: half of slowEveryMs
  slowFraction?: number; // default 0.05
  slowFactor?: number; // default 4
  keySpace?: number; // distinct keys for consistent hash, default 10 x servers
  ewmaDecayMs?: number; // EWMA time constant given to the EndpointSet, default 3 x median latency
  warmupRequests?: number; // unmeasured requests before the M measured ones, default 0 (see above)
}

export interface SimulationRow {
  strategy: BalancerName;
  /** Worst server's load / mean server's load (load = time-averaged outstanding / slots). */
  maxOverMean: number;
  /** Mean over servers of the load (1.0 = every slot busy all the time, above 1 = queueing). */
  meanLoad: number;
  maxLoad: number;
  p50Ms: number;
  p99Ms: number;
  /** Highest in-flight count any server reached. */
  peakInFlight: number;
  /**
   * Simulated ms from the first measured arrival to the last: the same for every strategy of a
   * run, since the arrivals do not depend on the picks.
   */
  windowMs: number;
  /** The alternative metric: worst server's utilisation (busy slot-time / slot-time) / mean. */
  utilMaxOverMean: number;
  /** Mean over servers of the utilisation (at most 1). */
  meanUtil: number;
}

const SERVERS_MAX = 100_000;
const REQUESTS_MAX = 10_000_000;

/** Runs every requested strategy on the same seeded workload and returns one row per strategy. */
export function simulateBalance(opts: SimulateOptions = {}): SimulationRow[] {
  const servers = opts.servers ?? 100;
  const requests = opts.requests ?? 20_000;
  requireArg(Number.isInteger(servers) && servers >= 2 && servers <= SERVERS_MAX, 'servers', `must be an integer in [2, ${SERVERS_MAX}]`);
  requireArg(Number.isInteger(requests) && requests >= 10 && requests <= REQUESTS_MAX, 'requests', `must be an integer in [10, ${REQUESTS_MAX}]`);
  const concurrency = opts.concurrency ?? 8;
  requireArg(Number.isInteger(concurrency) && concurrency >= 1 && concurrency <= 10_000, 'concurrency', 'must be an integer in [1, 10000]');
  const loadFactor = opts.loadFactor ?? 0.85;
  requireArg(loadFactor > 0 && loadFactor <= 2, 'loadFactor', 'must be in (0, 2]');
  const median = opts.medianLatencyMs ?? 10;
  requireArg(median > 0 && Number.isFinite(median), 'medianLatencyMs', 'must be a finite number > 0');
  const strategies = opts.strategies ?? BALANCER_NAMES;
  for (const s of strategies) requireArg(BALANCER_NAMES.includes(s), 'strategies', `unknown strategy "${s}"`);
  const warmupRequests = opts.warmupRequests ?? 0;
  requireArg(Number.isInteger(warmupRequests) && warmupRequests >= 0 && warmupRequests + requests <= REQUESTS_MAX, 'warmupRequests', `must be an integer >= 0, with requests + warmupRequests <= ${REQUESTS_MAX}`);
  const cfg: Config = {
    servers,
    requests,
    seed: opts.seed ?? 1,
    concurrency,
    loadFactor,
    median,
    latencySigma: opts.latencySigma ?? 0.6,
    jitterSigma: opts.jitterSigma ?? 0.3,
    slowEveryMs: opts.slowEveryMs ?? 0, // 0 = derive from the run length, below
    slowForMs: opts.slowForMs ?? -1,
    slowFraction: opts.slowFraction ?? 0.05,
    slowFactor: opts.slowFactor ?? 4,
    keySpace: opts.keySpace ?? 10 * servers,
    ewmaDecayMs: opts.ewmaDecayMs ?? 3 * median,
    warmupRequests,
  };
  requireArg(Number.isInteger(cfg.seed), 'seed', 'must be an integer');
  requireArg(cfg.latencySigma >= 0 && cfg.latencySigma <= 5, 'latencySigma', 'must be a number in [0, 5]');
  requireArg(cfg.jitterSigma >= 0 && cfg.jitterSigma <= 5, 'jitterSigma', 'must be a number in [0, 5]');
  requireArg(opts.slowEveryMs === undefined || (cfg.slowEveryMs > 0 && Number.isFinite(cfg.slowEveryMs)), 'slowEveryMs', 'must be a finite number > 0');
  requireArg(opts.slowForMs === undefined || (cfg.slowForMs >= 0 && Number.isFinite(cfg.slowForMs)), 'slowForMs', 'must be a finite number >= 0');
  requireArg(cfg.slowFraction >= 0 && cfg.slowFraction <= 1, 'slowFraction', 'must be a number in [0, 1]');
  requireArg(cfg.slowFactor >= 1 && Number.isFinite(cfg.slowFactor), 'slowFactor', 'must be a finite number >= 1');
  requireArg(Number.isInteger(cfg.keySpace) && cfg.keySpace >= 1 && cfg.keySpace <= 2 ** 32, 'keySpace', 'must be an integer in [1, 2^32]');
  return strategies.map((s) => runOne(s, cfg));
}

interface Config {
  servers: number;
  requests: number;
  seed: number;
  concurrency: number;
  loadFactor: number;
  median: number;
  latencySigma: number;
  jitterSigma: number;
  slowEveryMs: number;
  slowForMs: number;
  slowFraction: number;
  slowFactor: number;
  keySpace: number;
  ewmaDecayMs: number;
  warmupRequests: number;
}

function normal(rand: () => number): number {
  // Box-Muller; 1 - u keeps log away from 0.
  const u = 1 - rand();
  const v = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

function runOne(strategy: BalancerName, cfg: Config): SimulationRow {
  const { servers: n, concurrency: c } = cfg;
  const pre = cfg.warmupRequests;
  const m = pre + cfg.requests; // requests simulated; the first `pre` are not measured
  // Separate streams, each drawn in an order no strategy can change: base latencies up front,
  // arrival times and keys per arrival, each request's jitter at its arrival (not when it starts
  // service, which depends on where it was sent), slowdowns per slowdown epoch. So the workload
  // (servers, arrivals, keys, service-time factors, slowdowns) is identical for every strategy;
  // only the balancer's own random choices differ. (One shared stream, drawn as events happened,
  // gave each strategy a different sample of the same distributions.)
  const wl = seededRandom(cfg.seed);
  const arrivalRand = seededRandom(cfg.seed ^ 0x2545f491);
  const jitterRand = seededRandom(cfg.seed ^ 0x68e31da4);
  const slowRand = seededRandom(cfg.seed ^ 0x1b873593);
  const balRand = seededRandom(cfg.seed ^ 0x5bd1e995);

  const baseMs = new Float64Array(n);
  let capacityPerMs = 0;
  for (let i = 0; i < n; i++) {
    const b = cfg.median * Math.exp(cfg.latencySigma * normal(wl));
    baseMs[i] = Math.min(cfg.median * 10, Math.max(cfg.median / 10, b));
    capacityPerMs += c / (baseMs[i] as number);
  }
  const arrivalRatePerMs = cfg.loadFactor * capacityPerMs;
  // Slowdowns scale with the measured run so that it sees about five of them.
  const slowEveryMs = cfg.slowEveryMs > 0 ? cfg.slowEveryMs : cfg.requests / arrivalRatePerMs / 5;
  const slowForMs = cfg.slowForMs >= 0 ? cfg.slowForMs : slowEveryMs / 2;

  let nowMs = 0;
  const set = new EndpointSet({ clockMs: () => nowMs, ewmaDecayMs: cfg.ewmaDecayMs, endpointsMax: n });
  const eps: Endpoint[] = [];
  for (let i = 0; i < n; i++) eps.push(set.add(`s${i}`, { weight: strategy === 'weighted-round-robin' ? c / (baseMs[i] as number) : 1 }));
  const balancer = createBalancer(strategy, { endpoints: set, random: balRand });

  // Per request.
  const arrivalMs = new Float64Array(m);
  const serverOf = new Int32Array(m);
  const latencyMs = new Float64Array(m);
  const jitterOf = new Float64Array(m); // service-time factor, drawn at arrival
  const nextInQueue = new Int32Array(m).fill(-1);
  // Per server.
  const busy = new Int32Array(n);
  const outstanding = new Int32Array(n);
  const queueHead = new Int32Array(n).fill(-1);
  const queueTail = new Int32Array(n).fill(-1);
  const slowUntilMs = new Float64Array(n);
  const areaStartMs = new Float64Array(n); // last time `outstanding` changed
  const area = new Float64Array(n); // integral of outstanding over the measured window
  const busyArea = new Float64Array(n); // integral of busy slots over the measured window
  let peakInFlight = 0;

  // Completion heap: (time, request), at most n*c entries (one per busy slot).
  const heapCap = n * c;
  const heapTime = new Float64Array(heapCap);
  const heapReq = new Int32Array(heapCap);
  let heapSize = 0;
  const heapPush = (t: number, r: number): void => {
    let i = heapSize++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if ((heapTime[p] as number) <= t) break;
      heapTime[i] = heapTime[p] as number;
      heapReq[i] = heapReq[p] as number;
      i = p;
    }
    heapTime[i] = t;
    heapReq[i] = r;
  };
  const heapPop = (): number => {
    const top = heapReq[0] as number;
    const t = heapTime[--heapSize] as number;
    const r = heapReq[heapSize] as number;
    let i = 0;
    while (true) {
      let k = 2 * i + 1;
      if (k >= heapSize) break;
      if (k + 1 < heapSize && (heapTime[k + 1] as number) < (heapTime[k] as number)) k++;
      if ((heapTime[k] as number) >= t) break;
      heapTime[i] = heapTime[k] as number;
      heapReq[i] = heapReq[k] as number;
      i = k;
    }
    heapTime[i] = t;
    heapReq[i] = r;
    return top;
  };

  // Measurement window [warmMs, endMs]; warmMs is set when request `warmIndex` arrives: the first
  // measured one after an explicit warm-up, else request M/10 (the first tenth warms up).
  const warmIndex = pre > 0 ? pre : Math.floor(m / 10);
  let warmMs = Infinity;
  let endMs = Infinity;
  const touch = (i: number): void => {
    const from = Math.max(areaStartMs[i] as number, warmMs);
    const to = Math.min(nowMs, endMs);
    if (to > from) {
      area[i] = (area[i] as number) + (outstanding[i] as number) * (to - from);
      busyArea[i] = (busyArea[i] as number) + (busy[i] as number) * (to - from);
    }
    areaStartMs[i] = nowMs;
  };

  const jitterMu = (-cfg.jitterSigma * cfg.jitterSigma) / 2; // mean-1 log-normal
  // Callers touch(i) before a slot is taken or freed, so busyArea sees the old count.
  const startService = (r: number, i: number): void => {
    busy[i] = (busy[i] as number) + 1;
    const slow = nowMs < (slowUntilMs[i] as number) ? cfg.slowFactor : 1;
    const st = (baseMs[i] as number) * slow * (jitterOf[r] as number);
    heapPush(nowMs + st, r);
  };

  const key = new Uint8Array(4);
  let nextArrivalMs = -Math.log(1 - arrivalRand()) / arrivalRatePerMs;
  let nextSlowMs = slowEveryMs;
  const slowCount = Math.round(cfg.slowFraction * n);
  let arrived = 0;

  while (arrived < m || heapSize > 0) {
    const arrival = arrived < m && (heapSize === 0 || nextArrivalMs <= (heapTime[0] as number));
    const t = arrival ? nextArrivalMs : (heapTime[0] as number);
    while (nextSlowMs <= t) {
      for (let k = 0; k < slowCount; k++) slowUntilMs[Math.floor(slowRand() * n)] = nextSlowMs + slowForMs;
      nextSlowMs += slowEveryMs;
    }
    nowMs = t;
    if (arrival) {
      const r = arrived++;
      if (r === warmIndex) warmMs = nowMs;
      if (arrived === m) {
        endMs = nowMs;
        for (let i = 0; i < n; i++) touch(i); // close the window for every server
      }
      const k = Math.floor(arrivalRand() * cfg.keySpace);
      jitterOf[r] = Math.exp(jitterMu + cfg.jitterSigma * normal(jitterRand));
      key[0] = k & 0xff;
      key[1] = (k >>> 8) & 0xff;
      key[2] = (k >>> 16) & 0xff;
      key[3] = k >>> 24;
      const ep = balancer.pickOrThrow(key);
      const i = ep.index;
      set.onStart(ep);
      arrivalMs[r] = nowMs;
      serverOf[r] = i;
      touch(i);
      outstanding[i] = (outstanding[i] as number) + 1;
      if ((outstanding[i] as number) > peakInFlight) peakInFlight = outstanding[i] as number;
      if ((busy[i] as number) < c) {
        startService(r, i);
      } else if (queueTail[i] === -1) {
        queueHead[i] = r;
        queueTail[i] = r;
      } else {
        nextInQueue[queueTail[i] as number] = r;
        queueTail[i] = r;
      }
      nextArrivalMs = nowMs - Math.log(1 - arrivalRand()) / arrivalRatePerMs;
    } else {
      const r = heapPop();
      const i = serverOf[r] as number;
      const lat = nowMs - (arrivalMs[r] as number);
      latencyMs[r] = lat;
      set.onFinish(eps[i] as Endpoint, lat, true);
      touch(i);
      outstanding[i] = (outstanding[i] as number) - 1;
      busy[i] = (busy[i] as number) - 1;
      const q = queueHead[i] as number;
      if (q !== -1) {
        queueHead[i] = nextInQueue[q] as number;
        if (queueHead[i] === -1) queueTail[i] = -1;
        startService(q, i);
      }
    }
  }

  const windowMs = endMs - warmMs;
  let sumLoad = 0;
  let maxLoad = 0;
  let sumUtil = 0;
  let maxUtil = 0;
  for (let i = 0; i < n; i++) {
    const load = windowMs > 0 ? (area[i] as number) / windowMs / c : 0;
    sumLoad += load;
    if (load > maxLoad) maxLoad = load;
    const util = windowMs > 0 ? (busyArea[i] as number) / windowMs / c : 0;
    invariant(util <= 1 + 1e-9, 'utilisation <= 1');
    sumUtil += util;
    if (util > maxUtil) maxUtil = util;
  }
  const meanLoad = sumLoad / n;
  const meanUtil = sumUtil / n;
  const measured = latencyMs.subarray(pre);
  measured.sort();
  return {
    strategy,
    maxOverMean: meanLoad > 0 ? maxLoad / meanLoad : 0,
    meanLoad,
    maxLoad,
    p50Ms: quantile(measured, 0.5),
    p99Ms: quantile(measured, 0.99),
    peakInFlight,
    windowMs,
    utilMaxOverMean: meanUtil > 0 ? maxUtil / meanUtil : 0,
    meanUtil,
  };
}

/** Nearest-rank quantile of a sorted array. */
function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i] as number;
}

/** Simulation rows as table cells, one strategy per line: print them with util's `formatTable`. */
export function simulationCells(rows: readonly SimulationRow[]): Record<string, TableCell>[] {
  return rows.map((r) => ({
    strategy: r.strategy,
    'load max/mean': r.maxOverMean.toFixed(3),
    'mean load': r.meanLoad.toFixed(3),
    'max load': r.maxLoad.toFixed(3),
    'util max/mean': r.utilMaxOverMean.toFixed(3),
    'p50 ms': r.p50Ms.toFixed(2),
    'p99 ms': r.p99Ms.toFixed(2),
    'peak in-flight': r.peakInFlight,
  }));
}
