import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isPowerplantError } from '../../src/errors/index.js';
import { DEFAULT_SLOT_COUNT, hash32, slotOf, slotOfHash, slotRepresentativeHash } from '../../src/partition/index.js';

const encoder = new TextEncoder();
const bytes0to = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => i);

// Expected values: the first four are published XXH32 vectors (xxHash's own "" seed 0, the
// python-xxhash README's "Nobody inspects the spammish repetition", and the widely quoted "abc").
// The python `xxhash` module was not installed, so the rest were computed with an independent
// Python transcription of the XXH32 spec that reproduces those published values first.
const VECTORS: ReadonlyArray<readonly [string | Uint8Array, number, number]> = [
  ['', 0, 0x02cc5d05],
  ['abc', 0, 0x32d153ff],
  ['Nobody inspects the spammish repetition', 0, 0xe2293b2f],
  ['', 1, 0x0b2cb792],
  ['a', 0, 0x550d7456],
  ['xxhash', 20141025, 0x67bb40dd],
  ['0123456789abcdef', 0, 0xc2c45b69], // exactly one stripe, no tail
  ['user:1', 0, 0x7d366961],
  ['héllo wörld €𝄞 user:42', 0, 0xb6c73376], // 2-, 3- and 4-byte UTF-8 sequences
  [bytes0to(101), 0, 0x1a20e95b], // 6 stripes + 1 lane + 1 byte
  [bytes0to(101), 0x9e3779b1, 0x37b352ee], // seed above 2^31
];

/** Strings of arbitrary UTF-16 code units, with lone and paired surrogates made frequent. */
const codeUnitString = fc
  .array(
    fc.oneof(
      fc.integer({ min: 0, max: 0xffff }),
      fc.integer({ min: 0xd800, max: 0xdfff }),
      fc.integer({ min: 0, max: 0x7f }),
    ),
    { maxLength: 80 },
  )
  .map((units) => String.fromCharCode(...units));

describe('hash32 (xxHash32)', () => {
  it.each(VECTORS.map(([k, s, h]) => [typeof k === 'string' ? JSON.stringify(k) : `bytes(${k.length})`, k, s, h] as const))(
    'known vector %s',
    (_label, key, seed, expected) => {
      expect(hash32(key, seed)).toBe(expected);
      if (typeof key === 'string') expect(hash32(encoder.encode(key), seed)).toBe(expected);
    },
  );

  it('a string hashes as its UTF-8 bytes, for any code points (every length, so every tail shape)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 70 }), fc.integer({ min: 0, max: 0xffffffff }), (s, seed) => {
        expect(hash32(s, seed)).toBe(hash32(encoder.encode(s), seed));
      }),
      { numRuns: 2000 },
    );
  });

  it('lone surrogates hash as U+FFFD, exactly like TextEncoder', () => {
    fc.assert(
      fc.property(codeUnitString, (s) => {
        expect(hash32(s)).toBe(hash32(encoder.encode(s)));
      }),
      { numRuns: 2000 },
    );
    expect(hash32('\ud800')).toBe(hash32('\ufffd'));
    expect(hash32('a\udc00b')).toBe(hash32('a\ufffdb'));
    expect(hash32('\ud83d\ude00')).toBe(hash32(encoder.encode('😀')));
  });

  it('returns a uint32 and is deterministic', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        const h = hash32(b);
        expect(Number.isInteger(h) && h >= 0 && h <= 0xffffffff).toBe(true);
        expect(hash32(b.slice())).toBe(h);
      }),
    );
  });

  it('rejects a bad seed or key with a typed error naming the field', () => {
    for (const seed of [-1, 1.5, 2 ** 32, Number.NaN]) {
      let err: unknown;
      try {
        hash32('x', seed);
      } catch (e) {
        err = e;
      }
      expect(isPowerplantError(err, 'PP_ERR_INVALID_ARGUMENT')).toBe(true);
      expect((err as { field?: string }).field).toBe('seed');
    }
    expect(() => hash32(42 as unknown as string)).toThrow(expect.objectContaining({ code: 'PP_ERR_INVALID_ARGUMENT', field: 'key' }));
  });
});

describe('slots', () => {
  it('slotOf is in range and equals slotOfHash(hash32(key))', () => {
    fc.assert(
      fc.property(fc.string(), fc.integer({ min: 1, max: 1 << 20 }), (key, n) => {
        const s = slotOf(key, n);
        expect(Number.isInteger(s) && s >= 0 && s < n).toBe(true);
        expect(s).toBe(slotOfHash(hash32(key), n));
      }),
    );
    expect(DEFAULT_SLOT_COUNT).toBe(16384);
    expect(slotOf('user:1')).toBe(slotOfHash(hash32('user:1'), DEFAULT_SLOT_COUNT));
  });

  it('slotOfHash is floor(h * n / 2^32), exactly (BigInt reference)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 1, max: 1 << 24 }), (h, n) => {
        expect(slotOfHash(h, n)).toBe(Number((BigInt(h) * BigInt(n)) >> 32n));
      }),
      { numRuns: 5000 },
    );
    expect(slotOfHash(0xffffffff, 16384)).toBe(16383);
  });

  it('a slot representative hash is the lowest hash of its slot', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1 << 24 }), fc.nat(), (n, k) => {
        const slot = k % n;
        const h = slotRepresentativeHash(slot, n);
        expect(slotOfHash(h, n)).toBe(slot);
        if (h > 0) expect(slotOfHash(h - 1, n)).toBe(slot - 1);
      }),
      { numRuns: 5000 },
    );
  });

  it('rejects a bad slot count naming the field', () => {
    for (const n of [0, -3, 1.5, 2 ** 25]) {
      expect(() => slotOf('k', n)).toThrow(expect.objectContaining({ code: 'PP_ERR_INVALID_ARGUMENT', field: 'slotCount' }));
    }
  });
});
