/**
 * The `powerplant` command's public side: the contracts of what its commands load, and the load
 * generator they drive.
 *
 * - `powerplant start <entry>` loads an `AppModule` (app.ts): `start(ctx)` or `services` + `routes`.
 * - `powerplant bench <entry>` loads a module exporting `loadMix`, a `LoadMix` (mix.ts), and
 *   drives it with `runMix` (loadgen.ts); `formatMixTable` prints a result.
 *
 * The bin (bin/powerplant.js) runs `run(argv)` from main.ts. The root entry ('powerplant')
 * re-exports the contracts as types only, so importing the package does not load the CLI.
 */
export type { AppModule, RunningApp, ServicesModule, StartContext, StartModule } from './app.js';
export {
  CONNECTIONS_MAX, DURATION_MS_MAX, ENDPOINTS_MAX, SETUP_CONCURRENCY_MAX, USERS_MAX, REQUEST_TIMEOUT_MS, SETUP_TIMEOUT_MS,
  formatMixTable, runMix,
} from './loadgen.js';
export type { EndpointStats, MixOptions, MixResult, RequestStats } from './loadgen.js';
export type { LoadEndpoint, LoadMix, LoadPlan, LoadRequest, SetupAnswer, SetupContext, SetupHttp } from './mix.js';
