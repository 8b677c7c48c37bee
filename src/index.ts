/**
 * Powerplant's public entry. Each capability is a folder with one public `index.ts`; here they are
 * re-exported as namespaces (`partition.createJump`, `balance.createBalancer`, ...) so names that
 * several folders share (`formatTable`, `RandomSource`) never collide. The error catalogue is
 * exported flat because every module and every caller uses it.
 *
 * Each folder is also reachable as a subpath: `import { createJump } from 'powerplant/partition'`.
 */
export * from './errors/index.js';
export * as partition from './partition/index.js';
export * as balance from './balance/index.js';
export * as resilience from './resilience/index.js';
