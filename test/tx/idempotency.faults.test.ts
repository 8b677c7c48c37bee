/**
 * Idempotency keys under faults: a request whose process is SIGKILLed mid-work holds its key
 * until its lease lapses (duplicates meanwhile get PP_ERR_IN_PROGRESS, never a second run), then
 * the next request runs it; a request that outlives its lease keeps the key by renewing it; a
 * timeout leaves the key pending (the work may still be running) instead of freeing it.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ppError } from '../../src/errors/index.js';
import { openIdempotency } from '../../src/tx/index.js';
import { killChildren, runUntilKilled } from '../helpers/child.js';
import { needEngine } from '../helpers/engines.js';
import { waitUntil } from '../helpers/wait.js';
import { postgresCase, sqliteCase, uniqueId, type EngineCase } from '../store/helpers.js';

const engines: EngineCase[] = [sqliteCase()];
if (await needEngine('postgres')) engines.push(postgresCase());
afterEach(() => killChildren());
afterAll(async () => {
  for (const e of engines) await e.cleanup();
});

describe.each(engines.map((e) => [e.name, e] as const))('idempotency keys under faults on %s', (_name, engine) => {
  it('a SIGKILLed holder keeps the key until its lease lapses; then the next request runs the work', async () => {
    const id = uniqueId('idem');
    const key = `crash-${id}`;
    await runUntilKilled('test/tx/fixtures/idempotent-child.ts', [engine.url(id), key, '4000'], (l) => l === 'running');
    const store = await engine.open({ shards: 2 }, id);
    const keys = await openIdempotency(store);
    let runs = 0;
    const work = (): string => `done by parent (${++runs})`;
    const req = { scope: 'crash', key, fingerprint: 'the-request', waitMs: 0 };
    // The dead child's pending record is what the store holds: read its lapse time from it.
    const kv = await store.kv('pptx_idem');
    const rec = (await kv.scan({ limit: 10 })).items;
    expect(rec).toHaveLength(1);
    expect(rec[0]!.value).toMatchObject({ s: 'p' });
    const lapse = rec[0]!.expiresAtMs!;
    expect(Date.now()).toBeLessThan(lapse); // (a 4 s lease: the parent reads it well before)
    await expect(keys.run(req, work)).rejects.toMatchObject({ code: 'PP_ERR_IN_PROGRESS', retryable: true });
    await expect(keys.run({ ...req, fingerprint: 'another' }, work)).rejects.toMatchObject({ code: 'PP_ERR_CONFLICT' });
    await waitUntil(() => Date.now() > lapse, 10_000, 'the dead holder\'s lease to lapse');
    expect(await keys.run(req, work)).toMatchObject({ ok: true, value: 'done by parent (1)', replayed: false, stored: true });
    expect(await keys.run(req, work)).toMatchObject({ ok: true, value: 'done by parent (1)', replayed: true });
    expect(runs).toBe(1);
  }, 60_000);

  it('work that outlives leaseMs keeps its key (renewed): a duplicate meanwhile is IN_PROGRESS, not a second run', async () => {
    const store = await engine.open({ shards: 2 });
    const keys = await openIdempotency(store, { leaseMs: 90 });
    let runs = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const req = { scope: '', key: 'slow', fingerprint: 'f', waitMs: 0 };
    const first = keys.run(req, async () => {
      runs++;
      await gate;
      return 'first';
    });
    await waitUntil(() => runs === 1, 5_000, 'the work to start');
    const kv = await store.kv('pptx_idem');
    const started = (await kv.scan({ limit: 10 })).items[0]!;
    // Past several leases: the record is still pending (renewed, a newer version), duplicates are refused.
    await waitUntil(async () => ((await kv.scan({ limit: 10 })).items[0]?.version ?? 0) >= started.version + 3, 10_000, 'three renewals');
    await expect(keys.run(req, () => 'second')).rejects.toMatchObject({ code: 'PP_ERR_IN_PROGRESS' });
    release();
    expect(await first).toMatchObject({ ok: true, value: 'first', replayed: false });
    expect(await keys.run(req, () => 'second')).toMatchObject({ ok: true, value: 'first', replayed: true });
    expect(runs).toBe(1);
  });

  it('a timeout keeps the key pending until its lease lapses; a retryable failure frees it at once', async () => {
    const store = await engine.open({ shards: 2 });
    const keys = await openIdempotency(store, { leaseMs: 400 });
    const t = await keys.run({ scope: '', key: 'to', fingerprint: 'f' }, () => {
      throw ppError('PP_ERR_TIMEOUT');
    });
    expect(t).toMatchObject({ ok: false, stored: false });
    await expect(keys.run({ scope: '', key: 'to', fingerprint: 'f', waitMs: 0 }, () => 'again')).rejects.toMatchObject({ code: 'PP_ERR_IN_PROGRESS' });
    const u = await keys.run({ scope: '', key: 'un', fingerprint: 'f' }, () => {
      throw ppError('PP_ERR_UNAVAILABLE');
    });
    expect(u).toMatchObject({ ok: false, stored: false });
    expect(await keys.run({ scope: '', key: 'un', fingerprint: 'f', waitMs: 0 }, () => 'again')).toMatchObject({ ok: true, value: 'again', replayed: false });
    // A result too large to store is returned once and the key freed.
    const big = await keys.run({ scope: '', key: 'big', fingerprint: 'f' }, () => 'x'.repeat(store.limits.valueBytesMax + 1));
    expect(big).toMatchObject({ ok: true, stored: false });
    expect(await keys.run({ scope: '', key: 'big', fingerprint: 'f', waitMs: 0 }, () => 'small')).toMatchObject({ ok: true, value: 'small', replayed: false });
  });
});
