/**
 * The load generator behind `powerplant bench <entry>` and `npm run bench -- shop`: a closed-loop
 * HTTP driver of a request mix (`LoadMix`, exported by an application: examples/shop/loadmix.ts is
 * the shop's) over undici. This file knows no application: the mix names its endpoints and
 * weights, discovers its data and signs in (`setup`), and builds each request; the generator owns
 * the connections, the loop, the windows, the clocks, the counting and the table.
 *
 * SHAPE. `connections` virtual connections, each its own undici `Client` (one keep-alive socket,
 * pipelining 1), each with exactly one request outstanding: when a response's body has been read
 * the connection picks its next endpoint (by the weights, from its own seeded PRNG) and sends the
 * request the mix builds for it (closed loop, no think time). A Client per virtual connection
 * instead of one Pool: no pool scheduling on the hot path, and a dropped socket only affects its
 * own loop (undici reconnects it on the next request).
 *
 * HOT PATH. Requests go through `Client.dispatch` with the virtual connection itself as the
 * handler (no promise, stream or Response object per request); the body is counted, not kept
 * (only the first bytes of a few error bodies are, as samples). The mix hands back a request
 * object per request: precomputed ones (paths built once in `setup`, as the shop's mix does for
 * its GETs) cost nothing, and a body is the only string a request needs to build. Latency is
 * `performance.now()` from dispatch to the last body byte, recorded in a per-endpoint HDR
 * histogram (microseconds; allocation-free). Measured (2 shared cores, load average 10-14,
 * generator pinned to CPU 0, server to CPU 1, 64 connections; the shop's mix, then building one
 * options object per request): against a bare node:http server answering the mix, 20k req/s used
 * a third of the generator's core at ~16 us CPU per request (autocannon, one fixed URL, same
 * server: ~15 us), so one core drives ~50-60k req/s of the mix; against the shop it used ~7 % of
 * its core. The cost per request rises at low rates (fewer responses per event-loop turn), which
 * only matters when there is CPU to spare.
 *
 * SETUP. Before the load, `mix.setup(http, ctx)` (the contract is in mix.ts) runs once: `http.request` is one bounded request
 * (SETUP_TIMEOUT_MS, body read whole, spread round-robin over the connections' clients; a network
 * failure or timeout throws an Error describing it), `http.forEach` a bounded-concurrency loop.
 * It resolves to a `LoadPlan`: a summary line for the table, facts for the result (`info`), and
 * per virtual connection the function that builds its next request.
 *
 * WINDOWS. The first `warmupMs` are warm-up: requests STARTED then are not counted anywhere except
 * `warmupRequests`. A request started in the measured window is counted when it ends, even after the
 * window closes (the run waits for it, bounded by the request timeout), so slow requests are not
 * cut off. `rps` = ok responses / measured window.
 *
 * COUNTING. ok = 2xx. Anything else is an error: non-2xx by status (`byStatus`), network errors
 * (refused, reset, dropped mid-response) and timeouts (REQUEST_TIMEOUT_MS from dispatch, enforced by
 * a sweep every TIMEOUT_SWEEP_MS; `requestTimeoutMs` changes it, and undici's own header/body timeouts as a backstop) separately.
 * Every measured request, failed or not, is recorded in the histograms (a timeout shows as a 10 s
 * latency rather than vanishing), so `histogram.count === ok + errors === requests`. After a
 * network error a virtual connection pauses NETWORK_ERROR_PAUSE_MS before its next request, so a
 * dead server is not hammered in a tight loop.
 */
import { Client, type Dispatcher } from 'undici';
import { requireArg } from '../errors/index.js';
import { Hdr } from '../observe/index.js';
import { seededRandom } from '../util/index.js';
import type { LoadEndpoint, LoadMix, LoadRequest, SetupHttp } from './mix.js';

export type { LoadEndpoint, LoadMix, LoadPlan, LoadRequest, SetupAnswer, SetupContext, SetupHttp } from './mix.js';

// ---- options and results -------------------------------------------------------------------------

export interface MixOptions<E extends string = string, I extends object = Record<never, never>> {
  /** The mix to drive. */
  mix: LoadMix<E, I>;
  /** Base URL of the server, e.g. http://127.0.0.1:3000 (a path prefix is kept). */
  url: string;
  /** Virtual connections, each with one request outstanding (default 64, at most CONNECTIONS_MAX). */
  connections?: number;
  /** Measured window (default 20,000). */
  durationMs?: number;
  /** Warm-up before the measured window, not counted (default 3,000; 0 = none). */
  warmupMs?: number;
  /** Users for the mix to sign in (default min(connections, 100), at most USERS_MAX). */
  users?: number;
  /** A request without its full response after this long is aborted and counted as a timeout (default REQUEST_TIMEOUT_MS). */
  requestTimeoutMs?: number;
  /** PRNG seed of the mix (default 1). */
  seed?: number;
  /** Relative weights over the mix's; missing names keep the mix's weight, 0 turns an endpoint off. */
  weights?: Partial<Record<E, number>>;
  /** Called about every PROGRESS_INTERVAL_MS during the load (warm-up included). */
  onProgress?: (p: { elapsedMs: number; totalMs: number; requests: number; errors: number }) => void;
  /** Ends the run early; the result covers the measured time until then. */
  signal?: AbortSignal;
}

/** Outcome counts and latency percentiles of a set of requests (an endpoint, or all of them). */
export interface RequestStats {
  /** Responses by HTTP status (2xx included); network errors and timeouts are not here. */
  byStatus: Record<string, number>;
  networkErrors: number;
  timeouts: number;
  /** ok responses per second of the measured window. */
  rps: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  meanMs: number;
}

export interface EndpointStats<E extends string = string> extends RequestStats {
  name: E;
  /** e.g. 'GET /products/:id' */
  label: string;
  /** Share of the mix, 0..1 (from the weights). */
  weight: number;
  requests: number;
  ok: number;
  errors: number;
}

export interface MixResult<E extends string = string> extends RequestStats {
  /** The mix's name. */
  mix: string;
  /** What the mix's setup reported (LoadPlan.summary; '' for nothing). */
  summary: string;
  url: string;
  connections: number;
  /** The measured window actually run (shorter than asked when aborted). */
  durationMs: number;
  warmupMs: number;
  /** Requests completed that were started in the warm-up (not counted anywhere else). */
  warmupRequests: number;
  requests: number;
  ok: number;
  errors: number;
  endpoints: EndpointStats<E>[];
  /** All endpoints merged (microseconds). */
  histogram: Hdr;
  perEndpoint: Record<E, Hdr>;
  /** A few error descriptions, e.g. `GET /search?q= 500: {"error":…}` (at most ERROR_SAMPLES_MAX). */
  errorSamples: string[];
  seed: number;
  requestTimeoutMs: number;
  aborted: boolean;
}

export const REQUEST_TIMEOUT_MS = 10_000;
export const SETUP_TIMEOUT_MS = 30_000;
export const CONNECTIONS_MAX = 4_096;
export const USERS_MAX = 10_000;
/** One day: a bound, not a plan. */
export const DURATION_MS_MAX = 86_400_000;
/** Bound on a mix's endpoints (the per-endpoint histograms are preallocated). */
export const ENDPOINTS_MAX = 64;
/** Bound on `http.forEach`'s concurrency in a mix's setup. */
export const SETUP_CONCURRENCY_MAX = 256;
/** How often in-flight requests are checked against the timeout (at most; a quarter of a shorter timeout). */
const TIMEOUT_SWEEP_MS = 250;
const NETWORK_ERROR_PAUSE_MS = 10;
const PROGRESS_INTERVAL_MS = 200;
const ERROR_SAMPLES_MAX = 20;
const ERROR_SAMPLE_BYTES = 300;
/** Waiting for measured requests still in flight when the window closes, beyond the request timeout. */
const DRAIN_GRACE_MS = 2_000;
const ENDPOINT_NAME = /^[A-Za-z0-9_-]{1,40}$/;
const MIX_NAME = /^[A-Za-z0-9_.-]{1,60}$/;

class Totals {
  requests = 0;
  ok = 0;
  networkErrors = 0;
  timeouts = 0;
  /** Responses by status, indexed by status code 0..599. */
  readonly byStatus = new Float64Array(600);
  readonly hist = new Hdr();
}

/** State shared by the virtual connections of one run. */
class Run<E extends string> {
  readonly totals: Totals[];
  /** Cumulative weights over the endpoints, normalised to end at 1. */
  readonly cumulative: Float64Array;
  warmupEndAt = 0;
  endAt = 0;
  stopping = false;
  inFlight = 0;
  /** Every completed request, warm-up included (progress). */
  completed = 0;
  failed = 0;
  warmupRequests = 0;
  readonly errorSamples = new Map<string, string>();
  onDrained: (() => void) | undefined;
  /** The first exception a request builder threw: it ends the run, and runMix rethrows it. */
  builderError: Error | undefined;
  /** Ends the run (set by runMix). */
  stop: (() => void) | undefined;
  readonly timedOutError: Error;

  constructor(readonly names: readonly E[], readonly labels: readonly string[], weights: Readonly<Record<E, number>>, readonly requestTimeoutMs: number) {
    this.timedOutError = new Error(`no response within ${requestTimeoutMs} ms`);
    this.totals = names.map(() => new Totals());
    const sum = names.reduce((a, n) => a + weights[n], 0);
    this.cumulative = new Float64Array(names.length);
    let acc = 0;
    names.forEach((n, i) => {
      acc += weights[n] / sum;
      this.cumulative[i] = acc;
    });
    this.cumulative[names.length - 1] = 1;
  }

  sampleError(endpoint: number, what: string, detail: string): void {
    const key = `${this.labels[endpoint]!} ${what}`;
    if (this.errorSamples.size < ERROR_SAMPLES_MAX && !this.errorSamples.has(key)) this.errorSamples.set(key, detail);
  }

  wantsErrorSample(endpoint: number, status: number): boolean {
    return this.errorSamples.size < ERROR_SAMPLES_MAX && !this.errorSamples.has(`${this.labels[endpoint]!} ${status}`);
  }
}

/**
 * One closed loop: one undici Client (one socket), one request at a time. The object is its own
 * dispatch handler, so a request allocates nothing here: what the mix's builder returns is handed
 * to undici as it is.
 */
class VirtualConnection<E extends string> implements Dispatcher.DispatchHandlers {
  private endpoint = 0;
  private startedAt = 0;
  private status = 0;
  private measured = false;
  busy = false;
  private timedOut = false;
  private abortRequest: ((err?: Error) => void) | undefined;
  private sample: string | undefined;
  private readonly nextBound = (): void => this.next();

  constructor(private readonly run: Run<E>, private readonly client: Client, private readonly random: () => number, private readonly build: (endpoint: E) => LoadRequest) {}

  /** Picks the next endpoint, has the mix build its request and sends it, unless the run is over. */
  next(): void {
    const run = this.run;
    const now = performance.now();
    if (run.stopping || now >= run.endAt) {
      run.stopping = true;
      return;
    }
    const u = this.random();
    const cum = run.cumulative;
    let e = 0;
    while (e < cum.length - 1 && u >= cum[e]!) e++;
    let req: LoadRequest;
    try {
      req = this.build(run.names[e]!);
    } catch (err) {
      // A bug in the mix: stop the run rather than count it as the server's error.
      run.builderError ??= new Error(`the mix's request builder threw for ${run.names[e]!}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      run.stop?.();
      return;
    }
    this.endpoint = e;
    this.measured = now >= run.warmupEndAt;
    this.status = 0;
    this.timedOut = false;
    this.abortRequest = undefined;
    this.sample = undefined;
    this.busy = true;
    run.inFlight++;
    this.startedAt = now;
    // undici only reads the options object (it builds its own Request), so a shared,
    // precomputed one is safe; the readonly view is the mix's promise not to change it.
    this.client.dispatch(req as Dispatcher.DispatchOptions, this);
  }

  /** Aborts the request if it has run past the timeout (called by the run's sweep). */
  checkTimeout(now: number): void {
    if (this.busy && !this.timedOut && now - this.startedAt >= this.run.requestTimeoutMs && this.abortRequest !== undefined) {
      this.timedOut = true;
      this.abortRequest(this.run.timedOutError);
    }
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abortRequest = abort;
  }

  onHeaders(statusCode: number): boolean {
    this.status = statusCode;
    if (statusCode > 299 && this.measured && this.run.wantsErrorSample(this.endpoint, statusCode)) this.sample = '';
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.sample !== undefined && this.sample.length < ERROR_SAMPLE_BYTES) {
      this.sample += chunk.subarray(0, ERROR_SAMPLE_BYTES - this.sample.length).toString('utf8');
    }
    return true;
  }

  onComplete(): void {
    if (!this.busy) return;
    this.finish(false);
    queueMicrotask(this.nextBound); // not from inside undici's callback: its parser is still on the stack
  }

  onError(err: Error): void {
    if (!this.busy) return;
    if (this.measured && !this.timedOut) this.run.sampleError(this.endpoint, 'network error', err.message || err.name);
    this.finish(true);
    setTimeout(this.nextBound, NETWORK_ERROR_PAUSE_MS);
  }

  private finish(failed: boolean): void {
    const run = this.run;
    this.busy = false;
    run.inFlight--;
    run.completed++;
    const ok = !failed && this.status >= 200 && this.status <= 299;
    if (!ok) run.failed++;
    if (this.measured) {
      const t = run.totals[this.endpoint]!;
      t.requests++;
      t.hist.record((performance.now() - this.startedAt) * 1000);
      if (failed) {
        if (this.timedOut) t.timeouts++;
        else t.networkErrors++;
      } else {
        t.byStatus[this.status < 600 ? this.status : 0]! += 1;
        if (ok) t.ok++;
        else if (this.sample !== undefined) run.sampleError(this.endpoint, String(this.status), this.sample);
      }
    } else {
      run.warmupRequests++;
    }
    if (run.stopping && run.inFlight === 0) run.onDrained?.();
  }
}

interface HttpAnswer {
  status: number;
  text: string;
}

function describeError(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    const code = (err as { code?: unknown }).code;
    const base = err.message || err.name;
    if (cause instanceof Error && cause.message !== '' && !base.includes(cause.message)) return `${base} (${cause.message})`;
    return typeof code === 'string' && !base.includes(code) ? `${base} (${code})` : base;
  }
  return String(err);
}

/** One bounded setup request; the body is read whole. Throws on network errors and timeouts. */
async function setupRequest(
  client: Client, method: LoadRequest['method'], path: string, body: unknown, headers: Readonly<Record<string, string>> | undefined, signal: AbortSignal | undefined,
): Promise<HttpAnswer> {
  const timeout = AbortSignal.timeout(SETUP_TIMEOUT_MS);
  const res = await client.request({
    path, method,
    headers: body === undefined ? (headers ?? null) : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? null : JSON.stringify(body),
    signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]),
    headersTimeout: SETUP_TIMEOUT_MS, bodyTimeout: SETUP_TIMEOUT_MS,
  });
  return { status: res.statusCode, text: await res.body.text() };
}

function snippet(text: string): string {
  const t = text.replace(/\s+/g, ' ').trim();
  return t.length > 200 ? `${t.slice(0, 200)}…` : t;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Runs `task(i)` for i in 0..n-1, at most `limit` at a time; rejects with the first failure. */
async function forEachLimited(n: number, limit: number, task: (i: number) => Promise<void>): Promise<void> {
  requireArg(Number.isInteger(n) && n >= 0, 'count', 'must be an integer >= 0');
  requireArg(Number.isInteger(limit) && limit >= 1 && limit <= SETUP_CONCURRENCY_MAX, 'concurrency', `must be an integer from 1 to ${SETUP_CONCURRENCY_MAX}`);
  let nextIndex = 0;
  let failure: unknown;
  const worker = async (): Promise<void> => {
    while (failure === undefined && nextIndex < n) {
      const i = nextIndex++;
      try {
        await task(i);
      } catch (err) {
        failure ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
  if (failure !== undefined) throw failure;
}

/** The setup HTTP over the run's clients (round-robin), bounded and abortable. */
function setupHttp(clients: readonly Client[], signal: AbortSignal | undefined): SetupHttp {
  let next = 0;
  return {
    async request(method, path, options = {}) {
      const client = clients[next++ % clients.length]!;
      let res: HttpAnswer;
      try {
        res = await setupRequest(client, method, path, options.body, options.headers, signal);
      } catch (err) {
        signal?.throwIfAborted();
        throw new Error(describeError(err), { cause: err });
      }
      return { status: res.status, text: res.text, json: () => parseJson(res.text) };
    },
    forEach: forEachLimited,
  };
}

/** Checks a mix's shape, naming the bad field. */
function checkMix(value: unknown): void {
  requireArg(typeof value === 'object' && value !== null, 'mix', 'must be a LoadMix object');
  const mix = value as Partial<LoadMix>;
  requireArg(typeof mix.name === 'string' && MIX_NAME.test(mix.name), 'mix.name', 'must match [A-Za-z0-9_.-]{1,60}');
  requireArg(typeof mix.setup === 'function', 'mix.setup', 'must be a function');
  requireArg(Array.isArray(mix.endpoints) && mix.endpoints.length >= 1 && mix.endpoints.length <= ENDPOINTS_MAX, 'mix.endpoints', `must be an array of 1 to ${ENDPOINTS_MAX} endpoints`);
  const seen = new Set<string>();
  mix.endpoints.forEach((e, i) => {
    const f = `mix.endpoints[${i}]`;
    requireArg(typeof e === 'object' && e !== null, f, 'must be { name, label, weight }');
    requireArg(typeof e.name === 'string' && ENDPOINT_NAME.test(e.name), `${f}.name`, 'must match [A-Za-z0-9_-]{1,40}');
    requireArg(!seen.has(e.name), `${f}.name`, `${e.name} appears twice`);
    seen.add(e.name);
    requireArg(typeof e.label === 'string' && e.label !== '', `${f}.label`, 'must be a non-empty string');
    requireArg(typeof e.weight === 'number' && Number.isFinite(e.weight) && e.weight >= 0, `${f}.weight`, 'must be a finite number >= 0');
  });
}

function resolveWeights<E extends string>(names: readonly E[], endpoints: readonly LoadEndpoint<E>[], w: Partial<Record<E, number>> | undefined): Record<E, number> {
  const out = {} as Record<E, number>;
  for (const e of endpoints) out[e.name] = e.weight;
  for (const [name, v] of Object.entries(w ?? {})) {
    requireArg((names as readonly string[]).includes(name), 'weights', `unknown endpoint ${name} (one of ${names.join(', ')})`);
    requireArg(typeof v === 'number' && Number.isFinite(v) && v >= 0, `weights.${name}`, 'must be a finite number >= 0');
    out[name as E] = v;
  }
  requireArg(names.some((n) => out[n] > 0), 'weights', 'at least one must be positive');
  return out;
}

const ms = (us: number): number => us / 1000;

/** Drives `options.mix` against `options.url`; see the file comment for what is measured and how. */
export async function runMix<E extends string, I extends object = Record<never, never>>(options: MixOptions<E, I>): Promise<MixResult<E> & I> {
  const connections = options.connections ?? 64;
  const durationMs = options.durationMs ?? 20_000;
  const warmupMs = options.warmupMs ?? 3_000;
  const seed = options.seed ?? 1;
  const users = options.users ?? Math.min(connections, 100);
  const requestTimeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  requireArg(Number.isInteger(connections) && connections >= 1 && connections <= CONNECTIONS_MAX, 'connections', `must be an integer from 1 to ${CONNECTIONS_MAX}`);
  requireArg(Number.isFinite(durationMs) && durationMs > 0 && durationMs <= DURATION_MS_MAX, 'durationMs', `must be > 0 and <= ${DURATION_MS_MAX}`);
  requireArg(Number.isFinite(warmupMs) && warmupMs >= 0 && warmupMs <= DURATION_MS_MAX, 'warmupMs', `must be >= 0 and <= ${DURATION_MS_MAX}`);
  requireArg(Number.isInteger(users) && users >= 1 && users <= USERS_MAX, 'users', `must be an integer from 1 to ${USERS_MAX}`);
  requireArg(Number.isInteger(seed), 'seed', 'must be an integer');
  requireArg(Number.isFinite(requestTimeoutMs) && requestTimeoutMs >= 1 && requestTimeoutMs <= 600_000, 'requestTimeoutMs', 'must be from 1 to 600000');
  const mix = options.mix;
  checkMix(mix);
  const sweepMs = Math.max(1, Math.min(TIMEOUT_SWEEP_MS, Math.floor(requestTimeoutMs / 4)));
  const names = mix.endpoints.map((e) => e.name);
  const labels = mix.endpoints.map((e) => e.label);
  const weights = resolveWeights(names, mix.endpoints, options.weights);
  let base: URL;
  try {
    base = new URL(options.url);
  } catch {
    throw new Error(`not a URL: ${options.url}`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new Error(`not an http(s) URL: ${options.url}`);
  const basePath = base.pathname.replace(/\/+$/, '');
  const signal = options.signal;
  signal?.throwIfAborted();

  const clients = Array.from({ length: connections }, () => new Client(base.origin, {
    pipelining: 1,
    keepAliveTimeout: 60_000,
    connectTimeout: requestTimeoutMs,
    // Backstops of the sweep; setup requests pass their own, longer ones.
    headersTimeout: requestTimeoutMs + sweepMs * 4,
    bodyTimeout: requestTimeoutMs + sweepMs * 4,
  }));
  const timers: NodeJS.Timeout[] = [];
  let aborted = false;
  try {
    const plan = await mix.setup(setupHttp(clients, signal), { url: options.url, basePath, connections, users, seed, weights, signal });
    requireArg(typeof plan === 'object' && plan !== null && typeof plan.connection === 'function', 'mix.setup', 'must resolve to a LoadPlan ({ connection(index, random), summary?, info? })');
    const run = new Run(names, labels, weights, requestTimeoutMs);
    const vcs = clients.map((c, i) => {
      const random = seededRandom((seed + Math.imul(i + 1, 0x9e3779b9)) | 0);
      const build = plan.connection(i, random);
      requireArg(typeof build === 'function', 'plan.connection', 'must return a function (endpoint) => LoadRequest');
      return new VirtualConnection(run, c, random, build);
    });

    const startAt = performance.now();
    run.warmupEndAt = startAt + warmupMs;
    run.endAt = run.warmupEndAt + durationMs;
    let stoppedAt = run.endAt;
    const totalMs = warmupMs + durationMs;
    const done = new Promise<void>((resolve) => {
      let stopped = false;
      const stop = (): void => {
        if (stopped) return;
        stopped = true;
        stoppedAt = Math.min(performance.now(), run.endAt);
        run.stopping = true;
        run.onDrained = resolve;
        if (run.inFlight === 0) resolve();
        else timers.push(setTimeout(resolve, requestTimeoutMs + DRAIN_GRACE_MS)); // bound; the sweep times requests out before this
      };
      run.stop = stop; // a request builder that throws ends the run
      timers.push(setTimeout(stop, totalMs));
      if (signal !== undefined) {
        const onAbort = (): void => {
          aborted = true;
          stop();
        };
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
      }
    });
    timers.push(setInterval(() => {
      const now = performance.now();
      for (const vc of vcs) vc.checkTimeout(now);
    }, sweepMs));
    if (options.onProgress !== undefined) {
      const report = options.onProgress;
      timers.push(setInterval(() => {
        report({ elapsedMs: Math.min(totalMs, performance.now() - startAt), totalMs, requests: run.completed, errors: run.failed });
      }, PROGRESS_INTERVAL_MS));
    }
    for (const vc of vcs) vc.next();
    await done;
    if (run.builderError !== undefined) throw run.builderError;
    options.onProgress?.({ elapsedMs: Math.min(totalMs, performance.now() - startAt), totalMs, requests: run.completed, errors: run.failed });

    const measuredMs = Math.max(0, stoppedAt - run.warmupEndAt);
    const perSec = (n: number): number => (measuredMs > 0 ? (n * 1000) / measuredMs : 0);
    const histogram = new Hdr();
    const perEndpoint = {} as Record<E, Hdr>;
    const byStatusAll: Record<string, number> = {};
    const weightSum = names.reduce((a, n) => a + weights[n], 0);
    const endpoints: EndpointStats<E>[] = names.map((name, i) => {
      const t = run.totals[i]!;
      histogram.merge(t.hist);
      perEndpoint[name] = t.hist;
      const byStatus: Record<string, number> = {};
      let responses = 0;
      t.byStatus.forEach((c, status) => {
        if (c === 0) return;
        byStatus[String(status)] = c;
        byStatusAll[String(status)] = (byStatusAll[String(status)] ?? 0) + c;
        responses += c;
      });
      const errors = responses - t.ok + t.networkErrors + t.timeouts;
      return {
        name, label: labels[i]!, weight: weights[name] / weightSum, requests: t.requests, ok: t.ok, errors, byStatus,
        networkErrors: t.networkErrors, timeouts: t.timeouts, rps: perSec(t.ok),
        p50Ms: ms(t.hist.percentile(50)), p90Ms: ms(t.hist.percentile(90)), p99Ms: ms(t.hist.percentile(99)),
        p999Ms: ms(t.hist.percentile(99.9)), maxMs: ms(t.hist.max), meanMs: ms(t.hist.mean),
      };
    });
    const sum = (f: (e: EndpointStats<E>) => number): number => endpoints.reduce((a, e) => a + f(e), 0);
    const ok = sum((e) => e.ok);
    const result: MixResult<E> = {
      mix: mix.name, summary: plan.summary ?? '',
      url: options.url, connections, durationMs: measuredMs, warmupMs, warmupRequests: run.warmupRequests,
      requests: sum((e) => e.requests), ok, errors: sum((e) => e.errors),
      networkErrors: sum((e) => e.networkErrors), timeouts: sum((e) => e.timeouts), byStatus: byStatusAll, rps: perSec(ok),
      p50Ms: ms(histogram.percentile(50)), p90Ms: ms(histogram.percentile(90)), p99Ms: ms(histogram.percentile(99)),
      p999Ms: ms(histogram.percentile(99.9)), maxMs: ms(histogram.max), meanMs: ms(histogram.mean),
      endpoints, histogram, perEndpoint,
      errorSamples: [...run.errorSamples].map(([k, v]) => `${k}: ${snippet(v)}`),
      seed, requestTimeoutMs, aborted,
    };
    const info = plan.info ?? ({} as I);
    for (const k of Object.keys(info)) requireArg(!Object.hasOwn(result, k), `plan.info.${k}`, 'is a field of the result itself; name it differently');
    return { ...info, ...result };
  } finally {
    for (const t of timers) clearTimeout(t);
    await Promise.all(clients.map((c) => c.destroy().catch(() => undefined)));
  }
}

const fmt = (x: number, digits = 2): string => (Number.isFinite(x) ? x.toFixed(digits) : '-');

/** The per-endpoint table: share, counts, ok req/s, latency percentiles (ms), then the errors. */
export function formatMixTable(r: MixResult): string {
  const header = ['endpoint', 'mix', 'requests', 'ok', 'errors', 'ok req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'mean ms'];
  const rows: string[][] = r.endpoints.map((e) => [
    e.label, `${fmt(e.weight * 100, 1)}%`, String(e.requests), String(e.ok), String(e.errors), fmt(e.rps, 0),
    fmt(e.p50Ms), fmt(e.p90Ms), fmt(e.p99Ms), fmt(e.p999Ms), fmt(e.maxMs), fmt(e.meanMs),
  ]);
  rows.push([
    'all', '100%', String(r.requests), String(r.ok), String(r.errors), fmt(r.rps, 0),
    fmt(r.p50Ms), fmt(r.p90Ms), fmt(r.p99Ms), fmt(r.p999Ms), fmt(r.maxMs), fmt(r.meanMs),
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c]!.length)));
  const line = (cells: string[]): string => cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
  const out = [
    `${r.url}: ${r.connections} connections, ${fmt(r.durationMs / 1000, 1)} s measured after ${fmt(r.warmupMs / 1000, 1)} s warm-up${r.aborted ? ' (stopped early)' : ''}; ` +
      `${r.summary === '' ? '' : `${r.summary}, `}seed ${r.seed}`,
    '',
    line(header),
    ...rows.slice(0, -1).map(line),
    line(widths.map((w) => '-'.repeat(w))),
    line(rows.at(-1)!),
  ];
  if (r.errors > 0) {
    const statuses = Object.entries(r.byStatus).filter(([s]) => !/^2\d\d$/.test(s)).map(([s, c]) => `${c} x ${s}`);
    const parts = [...statuses];
    if (r.networkErrors > 0) parts.push(`${r.networkErrors} network errors`);
    if (r.timeouts > 0) parts.push(`${r.timeouts} timeouts (> ${r.requestTimeoutMs / 1000} s)`);
    out.push('', `errors: ${r.errors} of ${r.requests} requests (${fmt((100 * r.errors) / Math.max(1, r.requests), 2)}%): ${parts.join(', ')}`);
    for (const s of r.errorSamples) out.push(`  ${s}`);
  }
  return `${out.join('\n')}\n`;
}
