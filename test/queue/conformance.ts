/**
 * The queue conformance suite: every engine runs every case (test/queue/log.test.ts and
 * test/queue/jetstream.test.ts). Nothing asserts a timing; waits are bounded polls.
 */
import { describe, expect, it } from 'vitest';
import { DEAD_LETTER_HEADERS, type Delivery, type Queue } from '../../src/queue/index.js';
import { isPowerplantError } from '../../src/errors/index.js';
import { createLogger, MetricsRegistry } from '../../src/observe/index.js';
import { barrier, FAST, sleep, waitFor, type QueueCase } from './helpers.js';

async function collect(q: Queue, topic: string, max = 10_000): Promise<{ key: string | undefined; value: unknown; partition: number; offset: number; headers: Readonly<Record<string, string>> }[]> {
  const cfg = await q.topic(topic);
  const out = [];
  for (let p = 0; p < cfg!.partitions; p++) out.push(...(await q.read(topic, p, 'earliest', max)));
  return out;
}

export function queueConformance(c: QueueCase): void {
  describe(`queue conformance: ${c.name}`, () => {
    it('publishes durably and delivers every message to a group, with key, id, headers and value', async () => {
      const q = await c.open();
      await q.createTopic('orders', { partitions: 3 });
      const r1 = await q.publish('orders', { n: 1, tags: ['a'] }, { key: 'u1', id: 'm1', headers: { source: 'test' } });
      const r2 = await q.publish('orders', new Uint8Array([1, 2, 3]), { key: 'u2' });
      expect(r1.duplicate).toBe(false);
      expect(r1.partition).toBeGreaterThanOrEqual(0);
      expect(r1.partition).toBeLessThan(3);
      const got: Delivery[] = [];
      const sub = await q.subscribe('orders', { group: 'g1', ...FAST, handler: (m) => void got.push(m) });
      await waitFor(() => got.length === 2, 10_000, 'two deliveries');
      const a = got.find((m) => m.key === 'u1')!;
      expect(a.value).toEqual({ n: 1, tags: ['a'] });
      expect(a.id).toBe('m1');
      expect(a.headers).toEqual({ source: 'test' });
      expect(a.offset).toBe(r1.offset);
      expect(a.attempt).toBe(1);
      const b = got.find((m) => m.key === 'u2')!;
      expect(Buffer.from(b.value as Uint8Array)).toEqual(Buffer.from([1, 2, 3]));
      expect(b.partition).toBe(r2.partition);
      await waitFor(() => sub.stats().acked === 2, 5000, 'acks');
      await sub.close();
      // A closed member committed: the group resumes after what it handled.
      await q.publish('orders', { n: 3 }, { key: 'u3' });
      const again: unknown[] = [];
      const sentinels = new Set<string>();
      const sub2 = await q.subscribe<{ n?: number; sentinel?: string }>('orders', {
        group: 'g1',
        ...FAST,
        handler: (m) => {
          if (m.value.sentinel === undefined) again.push(m.value);
          else sentinels.add(m.value.sentinel);
        },
      });
      await barrier(q, 'orders', (t) => sentinels.has(t));
      expect(again).toEqual([{ n: 3 }]);
      await sub2.close();
    });

    it('every group gets every message', async () => {
      const q = await c.open();
      await q.createTopic('events', { partitions: 2 });
      for (let i = 0; i < 50; i++) await q.publish('events', i, { key: `k${i % 7}` });
      const seen: Record<string, Set<number>> = { a: new Set(), b: new Set() };
      const subs = await Promise.all(
        (['a', 'b'] as const).map((g) => q.subscribe<number>('events', { group: g, ...FAST, handler: (m) => void seen[g]!.add(m.value) })),
      );
      await waitFor(() => seen.a!.size === 50 && seen.b!.size === 50, 10_000, 'both groups');
      await Promise.all(subs.map((s) => s.close()));
    });

    it('keeps per-key order within a group, across failures and redeliveries', async () => {
      const q = await c.open();
      await q.createTopic('ordered', { partitions: 3 });
      const keys = 8;
      const n = 240;
      const ps = [];
      for (let i = 0; i < n; i++) ps.push(q.publish('ordered', { k: i % keys, i }, { key: `key-${i % keys}` }));
      await Promise.all(ps);
      const order = new Map<number, number[]>();
      const failedOnce = new Set<number>();
      const sub = await q.subscribe<{ k: number; i: number }>('ordered', {
        group: 'g',
        concurrency: 16,
        deliveriesMax: 5,
        backoff: [1, 5],
        ...FAST,
        handler: async (m) => {
          const { k, i } = m.value;
          await sleep((i * 7) % 5);
          // Every 10th message fails its first attempt: later ones of its key must wait for it.
          if (i % 10 === 3 && !failedOnce.has(i)) {
            failedOnce.add(i);
            throw new Error(`transient ${i}`);
          }
          const list = order.get(k) ?? [];
          list.push(i);
          order.set(k, list);
        },
      });
      await waitFor(() => [...order.values()].reduce((s, l) => s + l.length, 0) >= n, 20_000, 'all handled');
      for (const [k, list] of order) {
        const expected = Array.from({ length: n / keys }, (_, j) => j * keys + k);
        expect(list).toEqual(expected);
      }
      expect(sub.stats().redelivered).toBe(failedOnce.size);
      await sub.close();
    });

    it('members of a group share partitions and rebalance when members join and leave', async () => {
      const q = await c.open();
      await q.createTopic('shared', { partitions: 4 });
      const handled = new Map<number, string[]>();
      const mk = (name: string) =>
        q.subscribe<number>('shared', {
          group: 'workers',
          ...FAST,
          handler: (m) => {
            const l = handled.get(m.value) ?? [];
            l.push(name);
            handled.set(m.value, l);
          },
        });
      const a = await mk('a');
      await waitFor(() => a.partitions().length === 4, 10_000, 'a owns everything');
      const b = await mk('b');
      await waitFor(() => a.partitions().length === 2 && b.partitions().length === 2, 10_000, 'a and b split the partitions');
      expect([...a.partitions(), ...b.partitions()].sort()).toEqual([0, 1, 2, 3]);
      for (let i = 0; i < 100; i++) await q.publish('shared', i, { key: `k${i}` });
      await waitFor(() => handled.size === 100, 10_000, 'all handled');
      // Each partition is consumed by one member: with no failures, each message once.
      expect([...handled.values()].every((l) => l.length === 1)).toBe(true);
      expect(new Set([...handled.values()].flat())).toEqual(new Set(['a', 'b']));
      await b.close();
      await waitFor(() => a.partitions().length === 4, 10_000, 'a takes b partitions back');
      for (let i = 100; i < 120; i++) await q.publish('shared', i, { key: `k${i}` });
      await waitFor(() => handled.size === 120, 10_000, 'all handled after b left');
      expect([...handled.entries()].filter(([i]) => i >= 100).every(([, l]) => l.length === 1 && l[0] === 'a')).toBe(true);
      expect(a.stats().rebalances).toBeGreaterThanOrEqual(1);
      await a.close();
    });

    it('logs and counts every record it gives up on: moved to the dead-letter topic or dropped (never silent)', async () => {
      const lines: Record<string, unknown>[] = [];
      const logger = createLogger({ level: 'error', destination: { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) } });
      const metrics = new MetricsRegistry();
      const q = await c.open();
      q.instrument({ logger, metrics });
      await q.createTopic('poison', { partitions: 2 });
      await q.createTopic('drops', { partitions: 1 });
      await q.publish('poison', { n: 1 }, { key: 'k1', id: 'msg-1' });
      await q.publish('poison', { n: 2 }, { key: 'k2' });
      await q.publish('drops', { n: 3 });
      const fail = (): never => {
        throw new Error('insert refused');
      };
      const opts = { deliveriesMax: 2, backoff: { baseDelayMs: 5, delayMsMax: 20 }, ...FAST, handler: fail } as const;
      const moved = await q.subscribe('poison', { group: 'g', ...opts });
      const dropped = await q.subscribe('drops', { group: 'g', deadLetter: false, onError: () => {}, ...opts });
      await waitFor(() => moved.stats().deadLettered === 2 && dropped.stats().deadLettered === 1, 10_000, 'three dead letters');
      await Promise.all([moved.close(), dropped.close()]);
      expect(lines).toHaveLength(3);
      const byKey = new Map(lines.map((l) => [String(l.key ?? l.topic), l]));
      expect(byKey.get('k1')).toMatchObject({ level: 50, topic: 'poison', group: 'g', id: 'msg-1', attempts: 2, dlq: 'poison-dlq', msg: 'queue: record dead-lettered after its last delivery failed' });
      expect(String(byKey.get('k1')!.reason)).toContain('insert refused');
      expect(typeof byKey.get('k1')!.offset).toBe('number');
      expect(byKey.get('k2')).toMatchObject({ topic: 'poison', dlq: 'poison-dlq' });
      expect(byKey.get('drops')).toMatchObject({ topic: 'drops', dlq: '-', msg: 'queue: record dropped after its last delivery failed' });
      const text = metrics.render();
      expect(text).toContain('pp_queue_dead_letters_total{topic="poison",group="g",dlq="poison-dlq"} 2');
      expect(text).toContain('pp_queue_dead_letters_total{topic="drops",group="g",dlq="-"} 1');
    });

    it('redelivers a failing message with backoff, then dead-letters it with the failure reason', async () => {
      const q = await c.open();
      await q.createTopic('jobs', { partitions: 2 });
      await q.publish('jobs', { poison: true }, { key: 'p', headers: { trace: 't1' } });
      for (let i = 0; i < 10; i++) await q.publish('jobs', { ok: i }, { key: `ok${i}` });
      const attempts: number[] = [];
      let ok = 0;
      const sub = await q.subscribe<{ poison?: boolean; ok?: number }>('jobs', {
        group: 'g',
        deliveriesMax: 3,
        backoff: { baseDelayMs: 5, delayMsMax: 20 },
        ...FAST,
        handler: (m) => {
          if (m.value.poison === true) {
            attempts.push(m.attempt);
            throw new Error('cannot parse order');
          }
          ok++;
        },
      });
      await waitFor(() => sub.stats().deadLettered === 1 && ok === 10, 10_000, 'dead letter');
      expect(attempts).toEqual([1, 2, 3]);
      const dead = (await collect(q, 'jobs-dlq')).filter((m) => m.headers[DEAD_LETTER_HEADERS.topic] === 'jobs');
      expect(dead).toHaveLength(1);
      expect(dead[0]!.value).toEqual({ poison: true });
      expect(dead[0]!.key).toBe('p');
      expect(dead[0]!.headers[DEAD_LETTER_HEADERS.reason]).toContain('cannot parse order');
      expect(dead[0]!.headers[DEAD_LETTER_HEADERS.attempts]).toBe('3');
      expect(dead[0]!.headers[DEAD_LETTER_HEADERS.group]).toBe('g');
      expect(dead[0]!.headers.trace).toBe('t1');
      await sub.close();
      // The dead letter finished the record: the group does not see it again.
      const again: unknown[] = [];
      const sentinels = new Set<string>();
      const sub2 = await q.subscribe<{ sentinel?: string }>('jobs', {
        group: 'g',
        ...FAST,
        handler: (m) => {
          if (m.value.sentinel === undefined) again.push(m.value);
          else sentinels.add(m.value.sentinel);
        },
      });
      await barrier(q, 'jobs', (t) => sentinels.has(t));
      expect(again).toEqual([]);
      await sub2.close();
    });

    it('redelivers after ackWait a handler that never returns; its late ack is rejected, not counted', async () => {
      const q = await c.open();
      await q.createTopic('slow', { partitions: 1 });
      await q.publish('slow', 'x', { key: 'k' });
      const first: Delivery[] = [];
      let release!: () => void;
      const hang = new Promise<void>((r) => (release = r));
      const sub = await q.subscribe('slow', {
        group: 'g',
        ackWaitMs: 200,
        backoff: [0],
        ...FAST,
        handler: async (m) => {
          first.push(m);
          if (m.attempt === 1) await hang; // never returns until released
        },
      });
      await waitFor(() => sub.stats().acked === 1, 10_000, 'the redelivery acked');
      expect(first.map((m) => m.attempt)).toEqual([1, 2]);
      expect(first[0]!.signal.aborted).toBe(true);
      expect(sub.stats().abandoned).toBe(1);
      // The first delivery finally returns: rejected, counted as late, not as a second ack.
      release();
      await waitFor(() => sub.stats().lateAcks === 1, 5000, 'late ack counted');
      expect(first[0]!.ack()).toBe(false);
      expect(sub.stats().acked).toBe(1);
      await sub.close();
    });

    it('a handler that blocks the event loop past the lease is reported (stats, onError, log, metric); the member then carries on', async () => {
      const lines: string[] = [];
      const logger = createLogger({ level: 'warn', destination: { write: (l: string) => void lines.push(l) } });
      const metrics = new MetricsRegistry();
      const q = await c.open({ logger, metrics });
      await q.createTopic('blocking', { partitions: 1 });
      for (let i = 0; i < 20; i++) await q.publish('blocking', i, { key: `k${i}` });
      const errors: unknown[] = [];
      const handled: number[] = [];
      const sleeper = new Int32Array(new SharedArrayBuffer(4));
      const sub = await q.subscribe<number>('blocking', {
        group: 'g',
        heartbeatMs: 100,
        sessionTimeoutMs: 400,
        concurrency: 1,
        onError: (e) => errors.push(e),
        handler: (m) => {
          // Synchronous work far longer than the lease, once: nothing can renew it meanwhile.
          if (m.value === 5 && m.attempt === 1) Atomics.wait(sleeper, 0, 0, 1200);
          handled.push(m.value);
        },
      });
      await waitFor(() => new Set(handled).size === 20, 10_000, 'every record handled');
      expect(sub.stats().leaseLapses).toBeGreaterThanOrEqual(1);
      const lapse = errors.find((e) => isPowerplantError(e, 'PP_ERR_TIMEOUT') && /lapsed/.test(e.message));
      expect(String((lapse as Error | undefined)?.message)).toMatch(/blocking\/0\/\d+ blocked the event loop for \d+ ms/);
      const logged = lines.map((l) => JSON.parse(l) as { msg: string; topic: string; group: string; offset?: number; blockedMs?: number }).find((l) => /past the consumer lease/.test(l.msg));
      expect(logged).toMatchObject({ topic: 'blocking', group: 'g' });
      expect(logged!.blockedMs).toBeGreaterThanOrEqual(400);
      expect(metrics.render()).toMatch(/pp_queue_lease_lapses_total\{topic="blocking",group="g"\} [1-9]/);
      await sub.close();
    });

    it('explicit ack/nak: a nak redelivers, a second ack is rejected', async () => {
      const q = await c.open();
      await q.createTopic('explicit', { partitions: 1 });
      await q.publish('explicit', 1);
      const results: boolean[] = [];
      const sub = await q.subscribe('explicit', {
        group: 'g',
        backoff: [0],
        ...FAST,
        handler: (m) => {
          if (m.attempt === 1) {
            results.push(m.nak(new Error('later')));
            return;
          }
          results.push(m.ack());
          results.push(m.ack());
        },
      });
      await waitFor(() => results.length === 3, 10_000, 'two deliveries');
      expect(results).toEqual([true, true, false]);
      expect(sub.stats()).toMatchObject({ acked: 1, failed: 1, redelivered: 1, lateAcks: 1 });
      await sub.close();
    });

    it('dedups by message id within the window', async () => {
      const q = await c.open();
      await q.createTopic('dedup', { partitions: 2 });
      const a = await q.publish('dedup', 'first', { id: 'same', key: 'k' });
      const b = await q.publish('dedup', 'second', { id: 'same', key: 'k' });
      const [c1, c2] = await Promise.all([q.publish('dedup', 'x', { id: 'conc', key: 'j' }), q.publish('dedup', 'y', { id: 'conc', key: 'j' })]);
      expect(a.duplicate).toBe(false);
      expect(b.duplicate).toBe(true);
      expect(b.offset).toBe(a.offset);
      expect([c1.duplicate, c2.duplicate].sort()).toEqual([false, true]);
      expect(c1.offset).toBe(c2.offset);
      const all = await collect(q, 'dedup');
      expect(all.map((m) => m.value).sort()).toEqual(['first', 'x']);
    });

    it('delays delivery without blocking other keys', async () => {
      const q = await c.open();
      await q.createTopic('later', { partitions: 1 });
      const t0 = Date.now();
      await q.publish('later', 'delayed', { key: 'a', delayMs: 400 });
      await q.publish('later', 'now', { key: 'b' });
      const got: { v: unknown; at: number }[] = [];
      const sub = await q.subscribe('later', { group: 'g', ...FAST, handler: (m) => void got.push({ v: m.value, at: Date.now() }) });
      await waitFor(() => got.length === 2, 10_000, 'both');
      expect(got.map((g) => g.v)).toEqual(['now', 'delayed']);
      // Correctness, not speed: a delayed message is never handed out before its time.
      expect(got[1]!.at).toBeGreaterThanOrEqual(t0 + 400);
      await sub.close();
    });

    it('replays from an offset or a time (seek) and reads a partition without a group', async () => {
      const q = await c.open();
      await q.createTopic('replay', { partitions: 1 });
      const offs: number[] = [];
      for (let i = 0; i < 5; i++) offs.push((await q.publish('replay', i)).offset);
      await sleep(30);
      const mid = Date.now();
      await sleep(30);
      for (let i = 5; i < 10; i++) offs.push((await q.publish('replay', i)).offset);
      const seen: number[] = [];
      const run = async (): Promise<number[]> => {
        seen.length = 0;
        const s = await q.subscribe<number>('replay', { group: 'g', ...FAST, handler: (m) => void seen.push(m.value) });
        await waitFor(() => seen.length > 0 && seen[seen.length - 1] === 9, 10_000, 'last message');
        await s.close();
        return [...seen];
      };
      expect(await run()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      await q.seek('replay', 'g', { offset: offs[7]! });
      expect(await run()).toEqual([7, 8, 9]);
      await q.seek('replay', 'g', { timeMs: mid });
      expect(await run()).toEqual([5, 6, 7, 8, 9]);
      await q.seek('replay', 'g', 'earliest');
      expect(await run()).toHaveLength(10);
      expect((await q.read('replay', 0, { offset: offs[8]! }, 10)).map((m) => m.value)).toEqual([8, 9]);
      // A new group can start at a time too.
      const late: number[] = [];
      const s2 = await q.subscribe<number>('replay', { group: 'late', from: { timeMs: mid }, ...FAST, handler: (m) => void late.push(m.value) });
      await waitFor(() => late.length === 5, 10_000, 'from time');
      expect(late).toEqual([5, 6, 7, 8, 9]);
      await s2.close();
    });

    it('many publishes in one turn (one group commit / one batch) keep order, fields and distinct offsets; replay can start inside them', async () => {
      const q = await c.open();
      await q.createTopic('burst', { partitions: 2 });
      const n = 300;
      const rs = await Promise.all(
        Array.from({ length: n }, (_, i) => q.publish('burst', i % 3 === 0 ? new Uint8Array([i & 0xff, i >> 8]) : { i }, { key: `k${i % 5}`, ...(i % 4 === 0 ? { headers: { n: String(i) } } : {}) })),
      );
      for (const p of [0, 1]) {
        const mine = rs.map((r, i) => ({ r, i })).filter(({ r }) => r.partition === p);
        // Offsets grow with call order within a partition.
        for (let j = 1; j < mine.length; j++) expect(mine[j]!.r.offset).toBeGreaterThan(mine[j - 1]!.r.offset);
        const got = await q.read('burst', p, 'earliest', 1000);
        expect(got.map((m) => m.offset)).toEqual(mine.map(({ r }) => r.offset));
        for (const [j, m] of got.entries()) {
          const i = mine[j]!.i;
          expect(m.key).toBe(`k${i % 5}`);
          expect(m.headers).toEqual(i % 4 === 0 ? { n: String(i) } : {});
          if (i % 3 === 0) expect(Buffer.from(m.value as Uint8Array)).toEqual(Buffer.from([i & 0xff, i >> 8]));
          else expect(m.value).toEqual({ i });
        }
        // A read or a group can start at any record's offset, also one in the middle of a burst.
        const mid = mine[Math.floor(mine.length / 2)]!;
        const from = await q.read('burst', p, { offset: mid.r.offset }, 1000);
        expect(from[0]!.offset).toBe(mid.r.offset);
        expect(from).toHaveLength(mine.length - Math.floor(mine.length / 2));
      }
    });

    it('reads a partition to its end page by page, whatever its records are (batched, with ids, delayed, dead letters)', async () => {
      const q = await c.open();
      await q.createTopic('mixed', { partitions: 2 });
      const rs = [];
      // One turn of records without ids (one group commit / one JetStream batch), then records
      // with ids (each stored alone on JetStream), a delayed one, bytes, and an id'd record last.
      rs.push(...(await Promise.all(Array.from({ length: 12 }, (_, i) => q.publish('mixed', { b: i }, { partition: 0 })))));
      for (let i = 0; i < 7; i++) rs.push(await q.publish('mixed', { id: i }, { partition: 0, id: `m${i}` }));
      rs.push(await q.publish('mixed', 'later', { partition: 0, delayMs: 60_000 }));
      rs.push(...(await Promise.all(Array.from({ length: 5 }, (_, i) => q.publish('mixed', new Uint8Array([i]), { partition: 0, key: 'k' })))));
      rs.push(await q.publish('mixed', { last: true }, { partition: 0, id: 'last' }));
      // Appends to another partition afterwards do not move partition 0's end.
      await q.publish('mixed', 'other', { partition: 1, id: 'o1' });
      await q.publish('mixed', 'other', { partition: 1 });
      const pageAll = async (topic: string, p: number, max: number): Promise<{ pages: number[]; offsets: number[] }> => {
        const pages: number[] = [];
        const offsets: number[] = [];
        let from: { offset: number } | 'earliest' = 'earliest';
        for (;;) {
          const page: { offset: number }[] = await q.read(topic, p, from, max);
          pages.push(page.length);
          if (page.length === 0) break;
          offsets.push(...page.map((m) => m.offset));
          from = { offset: page[page.length - 1]!.offset + 1 };
          expect(pages.length).toBeLessThan(100);
        }
        return { pages, offsets };
      };
      const { pages, offsets } = await pageAll('mixed', 0, 4);
      expect(offsets).toEqual(rs.map((r) => r.offset));
      // Every page is full until the end: a short page or [] only at the end of the partition.
      expect(pages).toEqual([...Array.from({ length: Math.floor(rs.length / 4) }, () => 4), ...(rs.length % 4 === 0 ? [] : [rs.length % 4]), 0]);
      const b = await q.bounds('mixed', 0);
      expect(b.next).toBe(rs[rs.length - 1]!.offset + 1);
      expect(b.first).toBeLessThanOrEqual(rs[0]!.offset);
      expect(await q.read('mixed', 0, { offset: b.next })).toEqual([]);
      expect(await q.read('mixed', 0, 'latest')).toEqual([]);
      expect((await pageAll('mixed', 1, 1)).pages).toEqual([1, 1, 0]);
      // Dead letters are stored one by one with an id: their topic pages to its end as well.
      await q.createTopic('src', { partitions: 1 });
      for (let i = 0; i < 5; i++) await q.publish('src', { poison: i });
      const sub = await q.subscribe('src', { group: 'g', deliveriesMax: 1, ...FAST, handler: () => Promise.reject(new Error('poison')) });
      await waitFor(() => sub.stats().deadLettered === 5, 10_000, 'five dead letters');
      await sub.close();
      const dlq = await pageAll('src-dlq', 0, 2);
      expect(dlq.pages).toEqual([2, 2, 1, 0]);
      expect((await q.bounds('src-dlq', 0)).next).toBe(dlq.offsets[dlq.offsets.length - 1]! + 1);
    });

    it('bad input: oversize, unknown topic, bad options and reserved headers are typed errors', async () => {
      const q = await c.open({ limits: { messageBytesMax: 1024 } });
      await q.createTopic('t', { partitions: 2 });
      const code = async (p: Promise<unknown>): Promise<string> => {
        try {
          await p;
          return 'resolved';
        } catch (err) {
          return isPowerplantError(err) ? `${err.code}:${err.field ?? ''}` : String(err);
        }
      };
      expect(await code(q.publish('t', new Uint8Array(1025)))).toBe('PP_ERR_TOO_LARGE:message');
      expect(await code(q.publish('t', 'x'.repeat(2000)))).toBe('PP_ERR_TOO_LARGE:message');
      expect(await code(q.publish('nope', 1))).toBe('PP_ERR_UNKNOWN_TOPIC:topic');
      expect(await code(q.subscribe('nope', { group: 'g', handler: () => undefined }))).toBe('PP_ERR_UNKNOWN_TOPIC:topic');
      expect(await code(q.publish('t', 1, { headers: { 'pp-dead-reason': 'x' } }))).toMatch(/^PP_ERR_INVALID_ARGUMENT/);
      expect(await code(q.publish('t', 1, { delayMs: -1 }))).toBe('PP_ERR_INVALID_ARGUMENT:delayMs');
      expect(await code(q.publish('bad topic', 1))).toBe('PP_ERR_INVALID_ARGUMENT:topic');
      expect(await code(q.subscribe('t', { group: 'g', handler: () => undefined, concurrency: 0 }))).toBe('PP_ERR_INVALID_ARGUMENT:concurrency');
      expect(await code(q.subscribe('t', { group: 'g', handler: () => undefined, deliveriesMax: 0 }))).toBe('PP_ERR_INVALID_ARGUMENT:deliveriesMax');
      expect(await code(q.createTopic('t', { partitions: 3 }))).toBe('PP_ERR_CONFLICT:partitions');
      // Nothing of the rejected publishes was written.
      expect((await q.read('t', 0)).length + (await q.read('t', 1)).length).toBe(0);
      const auto = await c.open({ autoCreateTopics: true, topicDefaults: { partitions: 2 } });
      const r = await auto.publish('fresh', 'hello');
      expect(r.offset).toBeGreaterThanOrEqual(0);
      expect((await auto.topic('fresh'))?.partitions).toBe(2);
    });
  });
}
