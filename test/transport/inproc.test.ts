import { describe, expect, it } from 'vitest';
import { InprocTransport } from '../../src/transport/index.js';
import { transportConformance } from './conformance.js';

transportConformance('inproc', (nodeId, namespace, opts) => new InprocTransport('conformance', { nodeId, namespace, ...opts }));

describe('inproc transport specifics', () => {
  it('passes values by reference (zero serialization)', async () => {
    const a = new InprocTransport('ref', { nodeId: 'a', namespace: 'ref' });
    const b = new InprocTransport('ref', { nodeId: 'b', namespace: 'ref' });
    await a.connect();
    await b.connect();
    const params = { big: new Array(1000).fill(0) };
    b.serve(async (_action, p) => p);
    expect(await a.request('b', 'same', params, 1_000)).toBe(params);
    await a.close();
    await b.close();
  });
});
