import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ppError } from '../../src/errors/index.js';
import { buildFrame, decodeFrame, encodeError, encodeEvent, encodeOk, encodeRequest, ENVELOPE_VERSION, PendingCalls } from '../../src/transport/index.js';
import type { CallMeta, DecodeResult, FrameVisitor } from '../../src/transport/index.js';

type Seen = ['req', number, string, unknown, number, CallMeta | undefined] | ['rep', number, boolean, unknown] | ['evt', unknown];

function collect(frame: Uint8Array): { seen: Seen[]; result: DecodeResult } {
  const seen: Seen[] = [];
  const visitor: FrameVisitor = {
    onRequest: (id, action, params, timeoutMs, meta) => seen.push(['req', id, action, params, timeoutMs, meta]),
    onReply: (id, ok, value) => seen.push(['rep', id, ok, value]),
    onEvent: (payload) => seen.push(['evt', payload]),
  };
  const result: DecodeResult = { envelopes: 0, malformed: 0, unknownVersion: false };
  decodeFrame(frame, visitor, result);
  return { seen, result };
}

// JSON-like values (what params and results are). msgpack keeps them as JSON does, -0 included:
// both turn it into 0 (msgpack writes it as the integer 0), so the expectation is the JSON form.
// One deliberate difference: msgpackr decodes a key named "__proto__" as "__proto_" (so a message
// can never set an object's prototype); fast-check's JSON values do contain such keys, rarely
// (this made the round-trip property fail about one run in twenty).
const value = fc.jsonValue().map((v) => (v === undefined ? null : v));
const asJson = (v: unknown): unknown => JSON.parse(JSON.stringify(v), function (this: Record<string, unknown>, key, val: unknown) {
  if (key !== '__proto__') return val;
  this.__proto_ = val;
  return undefined;
}) as unknown;

describe('codec: versioned msgpack envelope', () => {
  it('round-trips any batch of envelopes in order', () => {
    const env = fc.oneof(
      fc.record({ k: fc.constant('req' as const), id: fc.nat(0xfffffffe), action: fc.string(), params: value, timeoutMs: fc.nat(1e9), rid: fc.option(fc.string(), { nil: undefined }) }),
      fc.record({ k: fc.constant('ok' as const), id: fc.nat(0xfffffffe), result: value }),
      fc.record({ k: fc.constant('evt' as const), payload: value }),
    );
    fc.assert(fc.property(fc.array(env, { minLength: 1, maxLength: 20 }), (envs) => {
      const bufs = envs.map((e) => e.k === 'req'
        ? encodeRequest(e.id, e.action, e.params, e.timeoutMs, e.rid === undefined ? undefined : { requestId: e.rid })
        : e.k === 'ok' ? encodeOk(e.id, e.result) : encodeEvent(e.payload));
      const frame = buildFrame(bufs, bufs.reduce((n, b) => n + b.length, 0));
      const { seen, result } = collect(frame);
      expect(result).toEqual({ envelopes: envs.length, malformed: 0, unknownVersion: false });
      envs.forEach((e, i) => {
        const s = seen[i]!;
        if (e.k === 'req') expect(s).toEqual(['req', e.id, e.action, asJson(e.params), e.timeoutMs, e.rid === undefined ? undefined : { requestId: e.rid }]);
        else if (e.k === 'ok') expect(s).toEqual(['rep', e.id, true, asJson(e.result)]);
        else expect(s).toEqual(['evt', asJson(e.payload)]);
      });
    }));
  });

  it('never lets a message set a prototype: a "__proto__" key arrives renamed', () => {
    const params = JSON.parse('{"__proto__":{"polluted":true},"a":1}') as unknown;
    const buf = encodeRequest(1, 'x', params, 1_000, undefined);
    const { seen } = collect(buildFrame([buf], buf.length));
    const got = seen[0]![3] as Record<string, unknown>;
    expect(Object.getPrototypeOf(got)).toBe(Object.prototype);
    expect(got).toEqual({ __proto_: { polluted: true }, a: 1 });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('carries catalogue errors as JSON', () => {
    const buf = encodeError(7, ppError('PP_ERR_VALIDATION', { field: 'params.id' }));
    const { seen } = collect(buildFrame([buf], buf.length));
    expect(seen[0]).toEqual(['rep', 7, false, expect.objectContaining({ code: 'PP_ERR_VALIDATION', field: 'params.id', retryable: false })]);
  });

  it('never throws on arbitrary bytes; counts them as malformed or unknown-version', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      const { result } = collect(bytes);
      expect(result.malformed + (result.unknownVersion ? 1 : 0) + result.envelopes).toBeGreaterThanOrEqual(bytes.length <= 1 ? 1 : 0);
    }), { numRuns: 2_000 });
  });

  it('drops a whole frame of an unknown version', () => {
    const buf = encodeOk(1, 'x');
    const { seen, result } = collect(buildFrame([buf], buf.length, ENVELOPE_VERSION + 1));
    expect(seen).toEqual([]);
    expect(result.unknownVersion).toBe(true);
  });
});

describe('pending calls: one timing wheel', () => {
  it('expires exactly the calls whose deadline passed, whatever the order of deadlines', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: 20_000 }), { minLength: 1, maxLength: 200 }), fc.integer({ min: 0, max: 25_000 }), (timeouts, advanceMs) => {
      const pending = new PendingCalls({ pendingMax: 1_000, tickMs: 5, slotCount: 64 });
      const outcome = new Map<number, string>();
      const start = performance.now();
      const ids = timeouts.map((t, i) => pending.add('n', t, () => outcome.set(i, 'ok'), (e: unknown) => outcome.set(i, (e as { code: string }).code)));
      pending.sweep(start + advanceMs);
      timeouts.forEach((t, i) => {
        // Allow one tick of slack on each side: the wheel's resolution.
        if (t <= advanceMs - 5) expect(outcome.get(i)).toBe('PP_ERR_TIMEOUT');
        if (t > advanceMs + 5) expect(outcome.has(i)).toBe(false);
      });
      for (const id of ids) pending.settle(id, true, null);
      pending.stop();
      expect(pending.size).toBe(0);
    }));
  });
});
