/**
 * The load generator behind `powerplant bench` and `npm run bench -- shop`: a closed-loop HTTP
 * driver of the shop's request mix (examples/shop/CONTRACT.md) over undici.
 *
 * SHAPE. `connections` virtual connections, each its own undici `Client` (one keep-alive socket,
 * pipelining 1), each with exactly one request outstanding: when a response's body has been read
 * the connection picks its next operation and sends it (closed loop, no think time). A Client per
 * virtual connection instead of one Pool: no pool scheduling on the hot path, and a dropped socket
 * only affects its own loop (undici reconnects it on the next request).
 *
 * HOT PATH. Requests go through `Client.dispatch` with the virtual connection itself as the
 * handler (no promise, stream or Response object per request); the body is counted, not kept
 * (only the first bytes of a few error bodies are, as samples). Paths are precomputed strings.
 * Latency is `performance.now()` from dispatch to the last body byte, recorded in a per-endpoint
 * HDR histogram (microseconds; allocation-free). Measured (2 shared cores, load average 10-14,
 * generator pinned to CPU 0, server to CPU 1, 64 connections): against a bare node:http server
 * answering the mix, 20k req/s used a third of the generator's core at ~16 us CPU per request
 * (autocannon, one fixed URL, same server: ~15 us), so one core drives ~50-60k req/s of the mix;
 * against the shop it used ~7 % of its core. The cost per request rises at low rates (fewer
 * responses per event-loop turn), which only matters when there is CPU to spare.
 *
 * SETUP. `GET /categories` (a failure here is "no shop at <url>"), every category's product pages
 * (`limit=100`, following the cursor, bounded) for product ids and names, search prefixes from
 * the names' words (2-4 letters), and `POST /sessions` for `users` seed users
 * (`user<n>@example.com` / `password-<n>`, default min(connections, 100); scrypt makes sign-ins
 * slow, so they run 8 at a time, spread over the connections, and each virtual connection reuses
 * the token of user (i mod users) + 1). Every setup request is bounded (SETUP_TIMEOUT_MS) and a
 * failure names what failed.
 *
 * MIX (weights, default): browse 80 % = `GET /products/:id` 60 + `GET /categories/:id/products` 20;
 * recent orders and search 15 % = `GET /orders` 7.5 + `GET /search?q=<prefix>` 7.5; place order
 * 5 % = `POST /orders` with 1-3 distinct SKUs, qty 1, a unique idempotencyKey. Each virtual
 * connection has its own seeded PRNG (sfc32 from src/balance). Product ids (and the SKUs ordered)
 * follow a Zipf law with exponent ZIPF_EXPONENT = 0.99 (YCSB's constant) over the discovered
 * products: P(rank r) ∝ 1/r^0.99, ranks assigned to products by a seeded shuffle so the hot ones
 * are spread over categories and shards (with 2,000 products the hottest gets ~12 % of product
 * reads, the top 20 ~43 %). Categories and search prefixes are uniform.
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
import { randomBytes } from 'node:crypto';
import { Client, type Dispatcher } from 'undici';
import { requireArg } from '../errors/index.js';
import { Hdr } from '../observe/index.js';
import { seededRandom, ZipfSampler } from '../util/index.js';

export type EndpointName = 'product' | 'category' | 'orders' | 'search' | 'placeOrder';

export interface MixOptions {
  /** Base URL of the shop, e.g. http://127.0.0.1:3000 (a path prefix is kept). */
  url: string;
  /** Virtual connections, each with one request outstanding (default 64, at most MAX_CONNECTIONS). */
  connections?: number;
  /** Measured window (default 20,000). */
  durationMs?: number;
  /** Warm-up before the measured window, not counted (default 3,000; 0 = none). */
  warmupMs?: number;
  /** Seed users to sign in (default min(connections, 100)). */
  users?: number;
  /** A request without its full response after this long is aborted and counted as a timeout (default REQUEST_TIMEOUT_MS). */
  requestTimeoutMs?: number;
  /** PRNG seed of the mix (default 1). */
  seed?: number;
  /** Relative weights; missing names keep their default, 0 turns an endpoint off. */
  weights?: Partial<Record<EndpointName, number>>;
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

export interface EndpointStats extends RequestStats {
  name: EndpointName;
  /** e.g. 'GET /products/:id' */
  label: string;
  /** Share of the mix, 0..1 (from the weights). */
  weight: number;
  requests: number;
  ok: number;
  errors: number;
}

export interface MixResult extends RequestStats {
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
  endpoints: EndpointStats[];
  /** All endpoints merged (microseconds). */
  histogram: Hdr;
  perEndpoint: Record<EndpointName, Hdr>;
  /** A few error descriptions, e.g. `GET /search?q= 500: {"error":…}` (at most MAX_ERROR_SAMPLES). */
  errorSamples: string[];
  users: number;
  seed: number;
  requestTimeoutMs: number;
  products: number;
  zipfExponent: number;
  aborted: boolean;
}

export const ENDPOINT_NAMES: readonly EndpointName[] = ['product', 'category', 'orders', 'search', 'placeOrder'];
export const ENDPOINT_LABELS: Readonly<Record<EndpointName, string>> = {
  product: 'GET /products/:id',
  category: 'GET /categories/:id/products',
  orders: 'GET /orders',
  search: 'GET /search?q=',
  placeOrder: 'POST /orders',
};
export const DEFAULT_WEIGHTS: Readonly<Record<EndpointName, number>> = {
  product: 60, category: 20, orders: 7.5, search: 7.5, placeOrder: 5,
};

export const ZIPF_EXPONENT = 0.99;
export const REQUEST_TIMEOUT_MS = 10_000;
export const SETUP_TIMEOUT_MS = 30_000;
export const MAX_CONNECTIONS = 4_096;
export const MAX_USERS = 10_000;
/** One day: a bound, not a plan. */
export const MAX_DURATION_MS = 86_400_000;
/** How often in-flight requests are checked against the timeout (at most; a quarter of a shorter timeout). */
const TIMEOUT_SWEEP_MS = 250;
const NETWORK_ERROR_PAUSE_MS = 10;
const PROGRESS_INTERVAL_MS = 200;
const SIGN_IN_CONCURRENCY = 8;
const DISCOVERY_CONCURRENCY = 4;
const MAX_PAGES_PER_CATEGORY = 200;
const MAX_PRODUCTS = 100_000;
const MAX_SEARCH_PREFIXES = 1_000;
const MAX_ERROR_SAMPLES = 20;
const ERROR_SAMPLE_BYTES = 300;
/** Waiting for measured requests still in flight when the window closes, beyond the request timeout. */
const DRAIN_GRACE_MS = 2_000;

interface ShopCatalog {
  categoryIds: string[];
  /** Product ids in Zipf rank order (hottest first). */
  productIdsByRank: string[];
  searchPrefixes: string[];
}


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
class Run {
  readonly totals: Totals[] = ENDPOINT_NAMES.map(() => new Totals());
  /** Cumulative weights over ENDPOINT_NAMES, normalised to end at 1. */
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
  readonly productPaths: string[];
  readonly categoryPaths: string[];
  readonly searchPaths: string[];
  readonly zipf: ZipfSampler;
  readonly runId = randomBytes(4).toString('hex');
  readonly timedOutError: Error;

  constructor(readonly basePath: string, readonly catalog: ShopCatalog, weights: Record<EndpointName, number>, readonly requestTimeoutMs: number) {
    this.timedOutError = new Error(`no response within ${requestTimeoutMs} ms`);
    const sum = ENDPOINT_NAMES.reduce((a, n) => a + weights[n], 0);
    this.cumulative = new Float64Array(ENDPOINT_NAMES.length);
    let acc = 0;
    ENDPOINT_NAMES.forEach((n, i) => {
      acc += weights[n] / sum;
      this.cumulative[i] = acc;
    });
    this.cumulative[ENDPOINT_NAMES.length - 1] = 1;
    this.productPaths = catalog.productIdsByRank.map((id) => `${basePath}/products/${encodeURIComponent(id)}`);
    this.categoryPaths = catalog.categoryIds.map((id) => `${basePath}/categories/${encodeURIComponent(id)}/products`);
    this.searchPaths = catalog.searchPrefixes.map((q) => `${basePath}/search?q=${encodeURIComponent(q)}`);
    this.zipf = new ZipfSampler(catalog.productIdsByRank.length, ZIPF_EXPONENT);
  }

  sampleError(endpoint: number, what: string, detail: string): void {
    const key = `${ENDPOINT_LABELS[ENDPOINT_NAMES[endpoint]!]} ${what}`;
    if (this.errorSamples.size < MAX_ERROR_SAMPLES && !this.errorSamples.has(key)) this.errorSamples.set(key, detail);
  }

  wantsErrorSample(endpoint: number, status: number): boolean {
    return this.errorSamples.size < MAX_ERROR_SAMPLES && !this.errorSamples.has(`${ENDPOINT_LABELS[ENDPOINT_NAMES[endpoint]!]} ${status}`);
  }
}

/**
 * One closed loop: one undici Client (one socket), one request at a time. The object is its own
 * dispatch handler, so a request allocates only its options object and, for orders, the body.
 */
class VirtualConnection implements Dispatcher.DispatchHandlers {
  private readonly random: () => number;
  private readonly authGet: string[] | undefined;
  private readonly authPost: string[] | undefined;
  private endpoint = 0;
  private startedAt = 0;
  private status = 0;
  private measured = false;
  busy = false;
  private timedOut = false;
  private abortRequest: ((err?: Error) => void) | undefined;
  private sample: string | undefined;
  private orderCounter = 0;
  private readonly nextBound = (): void => this.next();

  constructor(private readonly run: Run, private readonly index: number, private readonly client: Client, token: string | undefined, seed: number) {
    this.random = seededRandom((seed + Math.imul(index + 1, 0x9e3779b9)) | 0);
    if (token !== undefined) {
      this.authGet = ['authorization', `Bearer ${token}`];
      this.authPost = ['authorization', `Bearer ${token}`, 'content-type', 'application/json'];
    }
  }

  /** Picks the next operation and sends it, unless the run is over. */
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
    this.endpoint = e;
    this.measured = now >= run.warmupEndAt;
    this.status = 0;
    this.timedOut = false;
    this.abortRequest = undefined;
    this.sample = undefined;
    this.busy = true;
    run.inFlight++;
    this.startedAt = now;
    let opts: Dispatcher.DispatchOptions;
    switch (e) {
      case 0:
        opts = { path: run.productPaths[run.zipf.rank(this.random())]!, method: 'GET' };
        break;
      case 1:
        opts = { path: run.categoryPaths[Math.floor(this.random() * run.categoryPaths.length)]!, method: 'GET' };
        break;
      case 2:
        opts = { path: `${run.basePath}/orders`, method: 'GET', headers: this.authGet ?? null };
        break;
      case 3:
        opts = { path: run.searchPaths[Math.floor(this.random() * run.searchPaths.length)]!, method: 'GET' };
        break;
      default:
        opts = { path: `${run.basePath}/orders`, method: 'POST', headers: this.authPost ?? null, body: this.orderBody() };
    }
    this.client.dispatch(opts, this);
  }

  private orderBody(): string {
    const ids = this.run.catalog.productIdsByRank;
    const n = 1 + Math.floor(this.random() * 3);
    const picked: string[] = [];
    for (let tries = 0; picked.length < n && tries < 10; tries++) {
      const id = ids[this.run.zipf.rank(this.random())]!;
      if (!picked.includes(id)) picked.push(id);
    }
    const items = picked.map((sku) => `{"sku":${JSON.stringify(sku)},"qty":1}`).join(',');
    return `{"items":[${items}],"idempotencyKey":"bench-${this.run.runId}-${this.index}-${this.orderCounter++}"}`;
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
async function setupRequest(client: Client, method: 'GET' | 'POST', path: string, body: unknown, signal: AbortSignal | undefined): Promise<HttpAnswer> {
  const timeout = AbortSignal.timeout(SETUP_TIMEOUT_MS);
  const res = await client.request({
    path, method,
    headers: body === undefined ? null : { 'content-type': 'application/json' },
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

interface ProductRow {
  id: string;
  name: string;
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Categories, every product (id and name) through the category pages, and search prefixes. */
async function discover(url: string, basePath: string, clients: Client[], seed: number, signal: AbortSignal | undefined): Promise<ShopCatalog> {
  let cats: HttpAnswer;
  try {
    cats = await setupRequest(clients[0]!, 'GET', `${basePath}/categories`, undefined, signal);
  } catch (err) {
    signal?.throwIfAborted();
    throw new Error(`no shop at ${url}: GET /categories failed: ${describeError(err)}`);
  }
  const catsBody = parseJson(cats.text);
  if (cats.status !== 200 || !isRecord(catsBody) || !Array.isArray(catsBody.items)) {
    throw new Error(`no shop at ${url}: GET /categories answered ${cats.status} ${snippet(cats.text)} (expected 200 {"items":[…]})`);
  }
  const categoryIds = catsBody.items.flatMap((c: unknown) => (isRecord(c) && typeof c.id === 'string' ? [c.id] : []));
  if (categoryIds.length === 0) throw new Error(`the shop at ${url} lists no categories (GET /categories)`);

  const products = new Map<string, string>();
  await forEachLimited(categoryIds.length, DISCOVERY_CONCURRENCY, async (ci) => {
    const id = categoryIds[ci]!;
    let cursor: string | undefined;
    for (let page = 0; page < MAX_PAGES_PER_CATEGORY && products.size < MAX_PRODUCTS; page++) {
      const path = `${basePath}/categories/${encodeURIComponent(id)}/products?limit=100${cursor === undefined ? '' : `&cursor=${encodeURIComponent(cursor)}`}`;
      let res: HttpAnswer;
      try {
        res = await setupRequest(clients[ci % clients.length]!, 'GET', path, undefined, signal);
      } catch (err) {
        signal?.throwIfAborted();
        throw new Error(`cannot list the products of category ${id} (GET ${path}): ${describeError(err)}`);
      }
      const body = parseJson(res.text);
      if (res.status !== 200 || !isRecord(body) || !Array.isArray(body.items)) {
        throw new Error(`cannot list the products of category ${id} (GET ${path}): ${res.status} ${snippet(res.text)}`);
      }
      for (const p of body.items as unknown[]) {
        if (isRecord(p) && typeof p.id === 'string') products.set(p.id, typeof p.name === 'string' ? p.name : '');
      }
      cursor = typeof body.cursor === 'string' && body.items.length > 0 ? body.cursor : undefined;
      if (cursor === undefined) break;
    }
  });
  if (products.size === 0) throw new Error(`the shop at ${url} has no products (GET /categories/:id/products of ${categoryIds.length} categories)`);

  const rows: ProductRow[] = [...products].map(([id, name]) => ({ id, name })).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  // Seeded Fisher-Yates: the Zipf ranks land on products spread over categories (and shards).
  const random = seededRandom(seed | 0);
  const ids = rows.map((r) => r.id);
  for (let i = ids.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [ids[i], ids[j]] = [ids[j]!, ids[i]!];
  }
  const prefixes = new Set<string>();
  for (const r of rows) {
    for (const word of r.name.split(/\s+/)) {
      if (!/^[A-Za-z]{2,}$/.test(word)) continue;
      for (let len = 2; len <= Math.min(4, word.length); len++) prefixes.add(word.slice(0, len).toLowerCase());
    }
  }
  // Names without words (a shop that is not the seed's): fall back to a common letter.
  const searchPrefixes = [...prefixes].sort().slice(0, MAX_SEARCH_PREFIXES);
  if (searchPrefixes.length === 0) searchPrefixes.push('a');
  return { categoryIds, productIdsByRank: ids, searchPrefixes };
}

/** Signs in seed users 1..n (8 at a time, spread over the clients); returns their tokens. */
async function signIn(clients: Client[], basePath: string, n: number, signal: AbortSignal | undefined): Promise<string[]> {
  const tokens: string[] = new Array<string>(n);
  await forEachLimited(n, SIGN_IN_CONCURRENCY, async (i) => {
    const email = `user${i + 1}@example.com`;
    let res: HttpAnswer;
    try {
      res = await setupRequest(clients[i % clients.length]!, 'POST', `${basePath}/sessions`, { email, password: `password-${i + 1}` }, signal);
    } catch (err) {
      signal?.throwIfAborted();
      throw new Error(`cannot sign in ${email}: ${describeError(err)}`);
    }
    const body = parseJson(res.text);
    if (res.status !== 201 && res.status !== 200) throw new Error(`cannot sign in ${email}: ${res.status} ${snippet(res.text)}`);
    if (!isRecord(body) || typeof body.token !== 'string') throw new Error(`cannot sign in ${email}: ${res.status} without a token: ${snippet(res.text)}`);
    tokens[i] = body.token;
  });
  return tokens;
}

function resolveWeights(w: MixOptions['weights']): Record<EndpointName, number> {
  const out = { ...DEFAULT_WEIGHTS };
  for (const [name, v] of Object.entries(w ?? {})) {
    requireArg((ENDPOINT_NAMES as readonly string[]).includes(name), 'weights', `unknown endpoint ${name} (one of ${ENDPOINT_NAMES.join(', ')})`);
    requireArg(typeof v === 'number' && Number.isFinite(v) && v >= 0, `weights.${name}`, 'must be a finite number >= 0');
    out[name as EndpointName] = v;
  }
  requireArg(ENDPOINT_NAMES.some((n) => out[n] > 0), 'weights', 'at least one must be positive');
  return out;
}

const ms = (us: number): number => us / 1000;

/** Drives the shop mix against `options.url`; see the file comment for what is measured and how. */
export async function runMix(options: MixOptions): Promise<MixResult> {
  const connections = options.connections ?? 64;
  const durationMs = options.durationMs ?? 20_000;
  const warmupMs = options.warmupMs ?? 3_000;
  const seed = options.seed ?? 1;
  const users = options.users ?? Math.min(connections, 100);
  const requestTimeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  requireArg(Number.isInteger(connections) && connections >= 1 && connections <= MAX_CONNECTIONS, 'connections', `must be an integer from 1 to ${MAX_CONNECTIONS}`);
  requireArg(Number.isFinite(durationMs) && durationMs > 0 && durationMs <= MAX_DURATION_MS, 'durationMs', `must be > 0 and <= ${MAX_DURATION_MS}`);
  requireArg(Number.isFinite(warmupMs) && warmupMs >= 0 && warmupMs <= MAX_DURATION_MS, 'warmupMs', `must be >= 0 and <= ${MAX_DURATION_MS}`);
  requireArg(Number.isInteger(users) && users >= 1 && users <= MAX_USERS, 'users', `must be an integer from 1 to ${MAX_USERS}`);
  requireArg(Number.isInteger(seed), 'seed', 'must be an integer');
  requireArg(Number.isFinite(requestTimeoutMs) && requestTimeoutMs >= 1 && requestTimeoutMs <= 600_000, 'requestTimeoutMs', 'must be from 1 to 600000');
  const sweepMs = Math.max(1, Math.min(TIMEOUT_SWEEP_MS, Math.floor(requestTimeoutMs / 4)));
  const weights = resolveWeights(options.weights);
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
    const catalog = await discover(options.url, basePath, clients, seed, signal);
    const needTokens = weights.orders > 0 || weights.placeOrder > 0;
    const tokens = needTokens ? await signIn(clients, basePath, users, signal) : [];
    const run = new Run(basePath, catalog, weights, requestTimeoutMs);
    const vcs = clients.map((c, i) => new VirtualConnection(run, i, c, tokens[i % users], seed));

    const startAt = performance.now();
    run.warmupEndAt = startAt + warmupMs;
    run.endAt = run.warmupEndAt + durationMs;
    let stoppedAt = run.endAt;
    const totalMs = warmupMs + durationMs;
    const done = new Promise<void>((resolve) => {
      const stop = (): void => {
        if (run.stopping && run.onDrained !== undefined) return;
        stoppedAt = Math.min(performance.now(), run.endAt);
        run.stopping = true;
        run.onDrained = resolve;
        if (run.inFlight === 0) resolve();
        else timers.push(setTimeout(resolve, requestTimeoutMs + DRAIN_GRACE_MS)); // bound; the sweep times requests out before this
      };
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
    options.onProgress?.({ elapsedMs: Math.min(totalMs, performance.now() - startAt), totalMs, requests: run.completed, errors: run.failed });

    const measuredMs = Math.max(0, stoppedAt - run.warmupEndAt);
    const perSec = (n: number): number => (measuredMs > 0 ? (n * 1000) / measuredMs : 0);
    const histogram = new Hdr();
    const perEndpoint = {} as Record<EndpointName, Hdr>;
    const byStatusAll: Record<string, number> = {};
    const weightSum = ENDPOINT_NAMES.reduce((a, n) => a + weights[n], 0);
    const endpoints: EndpointStats[] = ENDPOINT_NAMES.map((name, i) => {
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
        name, label: ENDPOINT_LABELS[name], weight: weights[name] / weightSum, requests: t.requests, ok: t.ok, errors, byStatus,
        networkErrors: t.networkErrors, timeouts: t.timeouts, rps: perSec(t.ok),
        p50Ms: ms(t.hist.percentile(50)), p90Ms: ms(t.hist.percentile(90)), p99Ms: ms(t.hist.percentile(99)),
        p999Ms: ms(t.hist.percentile(99.9)), maxMs: ms(t.hist.max), meanMs: ms(t.hist.mean),
      };
    });
    const sum = (f: (e: EndpointStats) => number): number => endpoints.reduce((a, e) => a + f(e), 0);
    const ok = sum((e) => e.ok);
    return {
      url: options.url, connections, durationMs: measuredMs, warmupMs, warmupRequests: run.warmupRequests,
      requests: sum((e) => e.requests), ok, errors: sum((e) => e.errors),
      networkErrors: sum((e) => e.networkErrors), timeouts: sum((e) => e.timeouts), byStatus: byStatusAll, rps: perSec(ok),
      p50Ms: ms(histogram.percentile(50)), p90Ms: ms(histogram.percentile(90)), p99Ms: ms(histogram.percentile(99)),
      p999Ms: ms(histogram.percentile(99.9)), maxMs: ms(histogram.max), meanMs: ms(histogram.mean),
      endpoints, histogram, perEndpoint,
      errorSamples: [...run.errorSamples].map(([k, v]) => `${k}: ${snippet(v)}`),
      users: needTokens ? users : 0, seed, requestTimeoutMs, products: catalog.productIdsByRank.length, zipfExponent: ZIPF_EXPONENT, aborted,
    };
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
      `${r.products} products (Zipf ${r.zipfExponent}), ${r.users} signed-in users, seed ${r.seed}`,
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
