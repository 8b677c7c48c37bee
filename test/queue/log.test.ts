/**
 * The embedded engine: the conformance suite, then what only a local log has — segments and
 * their index, torn-tail recovery, retention, the directory lock, dedup across a restart.
 */
import { afterAll } from 'vitest';
import { queueConformance } from './conformance.js';
import { logCase } from './helpers.js';

const c = logCase();
afterAll(() => c.cleanup());
queueConformance(c);
