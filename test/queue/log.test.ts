/**
 * The embedded engine: the conformance suite, then what only a local log has — segments and
 * their index, torn-tail recovery, retention, the directory lock, dedup across a restart.
 */
import { appendFileSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isPowerplantError } from '../../src/errors/index.js';
import type { LogEngine } from '../../src/queue/index.js';
import { queueConformance } from './conformance.js';
import { FAST, logCase, uniqueId, waitFor } from './helpers.js';

const c = logCase();
afterAll(() => c.cleanup());
queueConformance(c);

const dirOf = (id: string): string => c.url(id).slice('file:'.length);
const segments = (id: string, topic: string, p = 0): string[] =>
  readdirSync(join(dirOf(id), 'topics', topic, String(p)))
    .filter((f) => f.endsWith('.log'))
    .sort()
    .map((f) => join(dirOf(id), 'topics', topic, String(p), f));

async function values(q: Awaited<ReturnType<typeof c.open>>, topic: string): Promise<unknown[]> {
  return (await q.read(topic, 0, 'earliest', 10_000)).map((m) => m.value);
}

describe('embedded log', () => {
  it('recovery cuts a torn tail (incomplete frame), keeps every complete record and reports the cut', async () => {
    const id = uniqueId('torn');
    let q = await c.open({}, id);
    await q.createTopic('t', { partitions: 1 });
    for (let i = 0; i < 50; i++) await q.publish('t', i);
    await q.close();
    const seg = segments(id, 't').at(-1)!;
    const size = readFileSync(seg).length;
    // A crash mid-write: the first 30 bytes of a frame that claims 1000 bytes.
    const torn = Buffer.alloc(30, 7);
    torn.writeUInt32LE(1000, 0);
    appendFileSync(seg, torn);
    q = await c.open({}, id);
    const ev = q.recovery.find((e) => e.kind === 'torn-tail');
    expect(ev).toMatchObject({ topic: 't', partition: 0, position: size, droppedBytes: 30, keptRecords: 50 });
    expect(readFileSync(seg).length).toBe(size);
    expect(await values(q, 't')).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect((await q.publish('t', 50)).offset).toBe(50);
    await q.close();
  });

  it('recovery cuts a record whose checksum fails and everything after it', async () => {
    const id = uniqueId('crc');
    let q = await c.open({}, id);
    await q.createTopic('t', { partitions: 1 });
    for (let i = 0; i < 20; i++) await q.publish('t', `value-${i}`);
    await q.close();
    const seg = segments(id, 't').at(-1)!;
    const buf = readFileSync(seg);
    buf[buf.length - 2] = buf[buf.length - 2]! ^ 0xff; // a torn sector inside the last record
    writeFileSync(seg, buf);
    q = await c.open({}, id);
    const ev = q.recovery.find((e) => e.kind === 'torn-tail');
    expect(ev?.keptRecords).toBe(19);
    expect(ev?.reason).toMatch(/checksum/);
    expect(await values(q, 't')).toEqual(Array.from({ length: 19 }, (_, i) => `value-${i}`));
    expect((await q.publish('t', 'again')).offset).toBe(19);
    await q.close();
  });

  /** Start positions of the frames of a segment file (each frame starts with its u32 length). */
  const frames = (buf: Buffer): number[] => {
    const out: number[] = [];
    for (let p = 0; p < buf.length; p += buf.readUInt32LE(p)) out.push(p);
    return out;
  };

  it('damage in the middle (checksum) is not a torn tail: the records after it are kept, the lost one is reported and skipped', async () => {
    const id = uniqueId('mid');
    let q = await c.open({}, id);
    await q.createTopic('t', { partitions: 1 });
    for (let i = 0; i < 20; i++) await q.publish('t', `value-${i}`);
    await q.close();
    const seg = segments(id, 't').at(-1)!;
    const buf = readFileSync(seg);
    const at = frames(buf);
    buf[at[8]! - 3] = buf[at[8]! - 3]! ^ 0xff; // a flipped bit in record 7's payload
    writeFileSync(seg, buf);
    q = await c.open({}, id);
    expect(q.recovery.filter((e) => e.kind === 'torn-tail')).toEqual([]);
    expect(q.recovery.find((e) => e.kind === 'corrupt-records')).toMatchObject({ topic: 't', partition: 0, position: at[7], offset: 7, lostRecords: 1 });
    const expected = Array.from({ length: 20 }, (_, i) => `value-${i}`).filter((v) => v !== 'value-7');
    expect(await values(q, 't')).toEqual(expected);
    expect((await q.publish('t', 'next')).offset).toBe(20);
    // A group reads past the tombstone and counts it as skipped.
    const seen: string[] = [];
    const sub = await q.subscribe<string>('t', { group: 'g', ...FAST, handler: (m) => void seen.push(m.value) });
    await waitFor(() => seen.at(-1) === 'next', 10_000, 'the newest record');
    expect(seen).toEqual([...expected, 'next']);
    expect(sub.stats().skipped).toBe(1);
    await sub.close();
    await q.close();
    // The repair was written: a second open finds nothing to do.
    q = await c.open({}, id);
    expect(q.recovery.filter((e) => e.kind === 'torn-tail' || e.kind === 'corrupt-records')).toEqual([]);
    expect(await values(q, 't')).toEqual([...expected, 'next']);
    await q.close();
  });

  it('damage that destroys frame lengths (several records zeroed) is resynchronised on the next valid frame', async () => {
    const id = uniqueId('zero');
    let q = await c.open({}, id);
    await q.createTopic('t', { partitions: 1 });
    for (let i = 0; i < 30; i++) await q.publish('t', { i, pad: 'y'.repeat(i * 3) });
    await q.close();
    const seg = segments(id, 't').at(-1)!;
    const buf = readFileSync(seg);
    const at = frames(buf);
    // A lost sector: from inside record 10 to inside record 13 (length fields of 11..13 gone).
    buf.fill(0, at[10]! + 5, at[13]! + 20);
    writeFileSync(seg, buf);
    q = await c.open({}, id);
    expect(q.recovery.find((e) => e.kind === 'corrupt-records')).toMatchObject({ position: at[10], offset: 10, lostRecords: 4 });
    const got = (await q.read<{ i: number }>('t', 0, 'earliest', 1000)).map((m) => m.value.i);
    expect(got).toEqual(Array.from({ length: 30 }, (_, i) => i).filter((i) => i < 10 || i > 13));
    expect((await q.publish('t', { i: 30, pad: '' })).offset).toBe(30);
    await q.close();
  });

  it('damage in a sealed segment is a typed error when read, and the next open repairs it', async () => {
    const id = uniqueId('sealed');
    const opts = { log: { segmentBytesMax: 4096, tailCacheRecords: 16 } };
    let q = await c.open(opts, id);
    await q.createTopic('t', { partitions: 1 });
    for (let i = 0; i < 100; i++) await q.publish('t', { i, pad: 'z'.repeat(150) });
    // Bit rot under a running queue: sealed segments are read from disk (the tail cache holds
    // only the newest records), so the damage is found by the read, not by an invariant.
    const sealed = segments(id, 't')[1]!;
    const buf = readFileSync(sealed);
    const at = frames(buf);
    buf[at[2]! + 50] = buf[at[2]! + 50]! ^ 0x01;
    writeFileSync(sealed, buf);
    let err: unknown;
    try {
      await q.read('t', 0, 'earliest', 1000);
    } catch (e) {
      err = e;
    }
    expect(isPowerplantError(err, 'PP_ERR_CORRUPT')).toBe(true);
    await q.close();
    q = await c.open(opts, id);
    const ev = q.recovery.find((e) => e.kind === 'corrupt-records');
    expect(ev).toMatchObject({ file: sealed, lostRecords: 1 });
    const got = (await q.read<{ i: number }>('t', 0, 'earliest', 1000)).map((m) => m.value.i);
    expect(got).toHaveLength(99);
    expect(got).not.toContain(ev!.offset);
    await q.close();
  });

  it('rolls segments, indexes offsets and times, and rebuilds a missing index', async () => {
    const id = uniqueId('seg');
    let q = await c.open({ log: { segmentBytesMax: 4096, indexIntervalBytes: 512 } }, id);
    await q.createTopic('t', { partitions: 1 });
    let mid = 0;
    for (let i = 0; i < 200; i++) {
      if (i === 120) {
        await new Promise((r) => setTimeout(r, 20));
        mid = Date.now();
        await new Promise((r) => setTimeout(r, 20));
      }
      await q.publish('t', { i, pad: 'x'.repeat(150) });
    }
    expect(segments(id, 't').length).toBeGreaterThan(5);
    const from150 = await q.read<{ i: number }>('t', 0, { offset: 150 }, 10);
    expect(from150.map((m) => m.value.i)).toEqual([150, 151, 152, 153, 154, 155, 156, 157, 158, 159]);
    await q.close();
    const idx = readdirSync(join(dirOf(id), 'topics', 't', '0')).filter((f) => f.endsWith('.idx')).sort();
    rmSync(join(dirOf(id), 'topics', 't', '0', idx[2]!));
    q = await c.open({ log: { segmentBytesMax: 4096, indexIntervalBytes: 512 } }, id);
    expect(q.recovery.some((e) => e.kind === 'index-rebuilt')).toBe(true);
    expect((await q.read<{ i: number }>('t', 0, 'earliest', 1000)).map((m) => m.value.i)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect(await q.engine.offsetForTime('t', 0, mid)).toBe(120);
    await q.close();
  });

  it('retention removes old segments; a group behind it moves on and counts what it skipped', async () => {
    const id = uniqueId('ret');
    const q = await c.open({ log: { segmentBytesMax: 4096 } }, id);
    await q.createTopic('t', { partitions: 1, retention: { bytesMax: 8192 } });
    for (let i = 0; i < 200; i++) await q.publish('t', { i, pad: 'x'.repeat(150) });
    const removed = await (q.engine as LogEngine).applyRetention();
    expect(removed).toBeGreaterThan(0);
    const { first, next } = await q.bounds('t', 0);
    expect(first).toBeGreaterThan(0);
    expect(next).toBe(200);
    const seen: number[] = [];
    await q.seek('t', 'g', { offset: 0 });
    const sub = await q.subscribe<{ i: number }>('t', { group: 'g', ...FAST, handler: (m) => void seen.push(m.value.i) });
    await waitFor(() => seen.at(-1) === 199, 10_000, 'the newest record');
    expect(seen[0]).toBe(first);
    expect(sub.stats().skipped).toBe(first);
    await sub.close();
  });

  it('one process per directory: a second open is PP_ERR_CONFLICT; ids are deduped across a restart', async () => {
    const id = uniqueId('lock');
    let q = await c.open({}, id);
    await q.createTopic('t', { partitions: 2 });
    const a = await q.publish('t', 'once', { id: 'order-1' });
    let err: unknown;
    try {
      await c.open({}, id);
    } catch (e) {
      err = e;
    }
    expect(isPowerplantError(err, 'PP_ERR_CONFLICT')).toBe(true);
    await q.close();
    q = await c.open({}, id);
    const b = await q.publish('t', 'twice', { id: 'order-1' });
    expect(b).toMatchObject({ duplicate: true, partition: a.partition, offset: a.offset });
    await q.close();
  });
});
