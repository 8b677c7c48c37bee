import { describe, expect, it } from 'vitest';
import { NatsTransport, buildFrame, encodeRequest, encodeOk } from '../../src/transport/index.js';
import { needEngine } from '../helpers/engines.js';
import { eventually, transportConformance } from './conformance.js';

const run = await needEngine('nats');
const URL = 'nats://127.0.0.1:4222';

describe.runIf(run)('nats', () => {
  transportConformance('nats', (nodeId, namespace, opts) => new NatsTransport([URL], { nodeId, namespace, ...opts }));

  describe('nats transport specifics', () => {
    it('drops and counts malformed and unknown-version frames, and keeps serving', async () => {
      const ns = `mal${process.pid}${Date.now().toString(36)}`;
      const a = new NatsTransport([URL], { nodeId: 'a', namespace: ns });
      const b = new NatsTransport([URL], { nodeId: 'b', namespace: ns });
      await a.connect();
      await b.connect();
      try {
        b.serve(async (_action, p) => p);
        const req = encodeRequest(1, 'x', 1, 1000, undefined);
        b.publishRaw('req.b', new Uint8Array([0xc1, 0xff, 0x00]), 'inbox.a'); // 0xc1: never used in msgpack
        b.publishRaw('req.b', buildFrame([req], req.length, 2), 'inbox.a'); // a version we do not speak
        b.publishRaw('req.b', new Uint8Array([1, 0xdc]), 'inbox.a'); // truncated array header
        b.publishRaw('req.b', new Uint8Array([1, 0x93, 1, 2, 3]), 'inbox.a'); // wrong shape
        b.publishRaw('req.b', new Uint8Array([]), 'inbox.a'); // empty
        b.publishRaw('req.b', buildFrame([req], req.length)); // request without a reply subject
        const ok = encodeOk(99, 'x');
        b.publishRaw('inbox.a', buildFrame([ok], ok.length)); // a reply nobody waits for
        b.publishRaw('inbox.a', new Uint8Array([1, 0xc1])); // garbage into the inbox
        await b.flush();
        await eventually(() => b.stats().droppedMalformed >= 5 && b.stats().droppedUnknownVersion === 1, 'request-side drops counted');
        await eventually(() => a.stats().droppedMalformed >= 1 && a.stats().droppedLateReplies === 1, 'inbox drops counted');
        expect(await a.request('b', 'echo', { still: 'alive' }, 5_000)).toEqual({ still: 'alive' });
      } finally {
        await a.close();
        await b.close();
      }
    });

    it('coalesces the calls of one turn into few frames', async () => {
      const ns = `bat${process.pid}${Date.now().toString(36)}`;
      const a = new NatsTransport([URL], { nodeId: 'a', namespace: ns });
      const b = new NatsTransport([URL], { nodeId: 'b', namespace: ns });
      await a.connect();
      await b.connect();
      try {
        b.serve(async (_action, p) => p);
        await Promise.all(Array.from({ length: 200 }, (_, i) => a.request('b', 'echo', i, 5_000)));
        expect(a.stats().requestsSent).toBe(200);
        expect(a.stats().framesSent).toBeLessThan(200);
      } finally {
        await a.close();
        await b.close();
      }
    });

    it('refuses a request larger than payloadBytesMax before sending it', async () => {
      const ns = `big${process.pid}${Date.now().toString(36)}`;
      const a = new NatsTransport([URL], { nodeId: 'a', namespace: ns, payloadBytesMax: 1024 });
      await a.connect();
      try {
        await expect(a.request('b', 'x', 'y'.repeat(2048), 1_000)).rejects.toMatchObject({ code: 'PP_ERR_TOO_LARGE', field: 'params' });
        expect(a.stats().pendingCalls).toBe(0);
      } finally {
        await a.close();
      }
    });
  });
});
