/**
 * The `powerplant` command's public side: the contracts of what its commands load, and the load
 * generator. `powerplant start <entry>` loads an `AppModule` (app.ts); the bin runs `run(argv)`
 * (main.ts).
 */
export type { AppModule, RunningApp, ServicesModule, StartContext, StartModule } from './app.js';
