/**
 * Small shared helpers that any folder may use: a seeded PRNG (sfc32) and a Zipf sampler for
 * balancers, simulations, load generators and benches, the project's one plain-text table
 * formatter, the reader of renamed (deprecated) option names, and canonical JSON (request
 * fingerprints). Pure and synchronous; imports nothing but the error catalogue.
 */
export { Sfc32, seededRandom, ZipfSampler } from './prng.js';
export { formatTable, type TableCell } from './table.js';
export { renamedOptions } from './options.js';
export { canonicalJson, CANONICAL_DEPTH_MAX } from './canonical.js';
