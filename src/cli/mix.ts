/**
 * What `powerplant bench <entry>` loads: a request mix (`export const loadMix: LoadMix`), the
 * contract between an application and the load generator (loadgen.ts). The application knows its
 * API (which endpoints, in which proportions, what data to discover, how to sign in, how to build
 * a request); the generator owns connections, the closed loop, windows, timeouts, counting,
 * histograms and the table. examples/shop/loadmix.ts is the shop's.
 *
 * The order of a run: `setup(http, ctx)` once (bounded setup requests, not measured), then per
 * virtual connection `plan.connection(index, random)` once, then per request the generator draws
 * the endpoint by weight from that connection's seeded PRNG and calls the builder for it.
 */

/** One request of the mix, as the virtual connection sends it. */
export interface LoadRequest {
  readonly method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** The request target on the origin, the URL's base path included: `${ctx.basePath}/products/p1?x=1`. */
  readonly path: string;
  /** Headers as a flat name/value list (`['authorization', 'Bearer …', 'content-type', 'application/json']`). */
  readonly headers?: readonly string[] | null;
  readonly body?: string | null;
}

/** An endpoint of a mix: its name (results, histogram files), how the table shows it, its share. */
export interface LoadEndpoint<E extends string = string> {
  /** An identifier, [A-Za-z0-9_-]{1,40}: `bench-shop.<name>.hgrm`. */
  readonly name: E;
  /** e.g. `GET /products/:id` */
  readonly label: string;
  /** Relative weight, finite and >= 0 (0 = off unless MixOptions.weights turns it on). */
  readonly weight: number;
}

/** What `setup` is told about the run. */
export interface SetupContext<E extends string = string> {
  /** The URL as given. */
  readonly url: string;
  /** Its path without a trailing slash ('' for none): every path a mix sends starts with it. */
  readonly basePath: string;
  readonly connections: number;
  /** Users a mix that signs in should sign in (MixOptions.users; default min(connections, 100)). */
  readonly users: number;
  readonly seed: number;
  /** The weights in force (the mix's, with MixOptions.weights over them). */
  readonly weights: Readonly<Record<E, number>>;
  /** Aborts the run; `http.request` rejects with its reason once it fires. */
  readonly signal: AbortSignal | undefined;
}

/** The answer to a setup request. */
export interface SetupAnswer {
  readonly status: number;
  readonly text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json(): unknown;
}

/** The HTTP a mix's setup may use (not measured, not on the hot path). */
export interface SetupHttp {
  /**
   * One request, bounded by SETUP_TIMEOUT_MS, on the next connection's client (round-robin). `body`
   * is sent as JSON. A network failure or timeout rejects with an Error whose message says what
   * happened; every status resolves.
   */
  request(method: LoadRequest['method'], path: string, options?: { body?: unknown; headers?: Readonly<Record<string, string>> }): Promise<SetupAnswer>;
  /** Runs `task(i)` for i in 0..count-1, at most `concurrency` at a time; rejects with the first failure. */
  forEach(count: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void>;
}

/** What `setup` found, and how each virtual connection builds its requests. */
export interface LoadPlan<E extends string = string, I extends object = Record<never, never>> {
  /** Shown in the table's first line, e.g. `2000 products (Zipf 0.99), 64 signed-in users`. */
  readonly summary?: string;
  /** Facts about the run, merged into the result (and its JSON): names must not be the result's own. */
  readonly info?: I;
  /**
   * The request builder of virtual connection `index` (0-based), given that connection's seeded
   * PRNG (the generator draws the endpoint from it first, then the builder draws what it needs).
   * The builder is called once per request on the hot path: return precomputed objects where the
   * request does not vary; a returned object is only read, so it may be shared.
   */
  connection(index: number, random: () => number): (endpoint: E) => LoadRequest;
}

/** A request mix: what `powerplant bench <entry>` loads (`export const loadMix`). */
export interface LoadMix<E extends string = string, I extends object = Record<never, never>> {
  /** [A-Za-z0-9_.-]{1,60}: the default histogram file is `./bench-<name>.hgrm`. */
  readonly name: string;
  /** One line for `powerplant bench`'s start-up message, e.g. `browse 80%, …`. */
  readonly description?: string;
  readonly endpoints: readonly LoadEndpoint<E>[];
  /** Discovers data, signs in; resolves to the plan. A failure ends the run (its message is reported). */
  setup(http: SetupHttp, ctx: SetupContext<E>): Promise<LoadPlan<E, I>>;
}
