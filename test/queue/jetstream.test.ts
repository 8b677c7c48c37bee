/** The NATS JetStream engine runs the same conformance suite (needs NATS with JetStream on 127.0.0.1:4222). */
import { afterAll, describe, expect, it } from 'vitest';
import { isPowerplantError } from '../../src/errors/index.js';
import { needEngine } from '../helpers/engines.js';
import { queueConformance } from './conformance.js';
import { jetstreamCase } from './helpers.js';

const up = await needEngine('nats');
const c = jetstreamCase();
afterAll(() => (up ? c.cleanup() : undefined));
describe.runIf(up)('jetstream', () => {
  queueConformance(c);

  it("a message within the queue's limit but over the server's max_payload is PP_ERR_TOO_LARGE, not a retryable failure", async () => {
    const q = await c.open({ limits: { messageBytesMax: 8 * 1024 * 1024 } });
    await q.createTopic('big', { partitions: 1 });
    let err: unknown;
    try {
      await q.publish('big', new Uint8Array(2 * 1024 * 1024));
    } catch (e) {
      err = e;
    }
    expect(isPowerplantError(err, 'PP_ERR_TOO_LARGE')).toBe(true);
    expect((err as { field?: string }).field).toBe('message');
    expect((await q.publish('big', new Uint8Array(1000))).duplicate).toBe(false);
  });
});
