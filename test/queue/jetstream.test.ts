/** The NATS JetStream engine runs the same conformance suite (needs NATS with JetStream on 127.0.0.1:4222). */
import { afterAll, describe } from 'vitest';
import { needEngine } from '../helpers/engines.js';
import { queueConformance } from './conformance.js';
import { jetstreamCase } from './helpers.js';

const up = await needEngine('nats');
const c = jetstreamCase();
afterAll(() => (up ? c.cleanup() : undefined));
describe.runIf(up)('jetstream', () => queueConformance(c));
