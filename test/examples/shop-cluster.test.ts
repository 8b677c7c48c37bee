/**
 * Fault test of the reference backend: the shop on PostgreSQL + Redis + NATS as THREE node
 * processes (each runs all nine services (stats included) and a gateway; they share the store, the cache's L2, the
 * transport and the JetStream queue), a steady load of order placements and reads spread over the
 * three gateways, and one node SIGKILLed in the middle of it.
 *
 * The client behaves as a careful client should: every order carries its own idempotencyKey; an
 * order counts as acknowledged only on a 201; a placement that failed without a definitive answer
 * (connection reset, 5xx, timeout) is retried with the SAME key on another gateway. Requests that
 * were in flight to the killed node's gateway are not acknowledged and count in no rate.
 *
 * What must hold afterwards (read through the surviving gateways):
 *  1. No acknowledged order is lost: each one answers GET /orders/:id and is in its user's GET /orders.
 *  2. Each idempotency key produced exactly one order: every 201 for a key named the same orderId
 *     (so did a deliberate replay of some keys after the run), and each user's order list holds
 *     exactly the orders of that user's keys, no more.
 *  3. Stock is exact: for every SKU, available = before - the quantities of the acknowledged orders.
 *     Exact (not an inequality) because the client ends with every key acknowledged (retried with
 *     its key until a 201), and a checkout is a durable workflow whose id is the order id: a checkout
 *     whose node died is taken over by a survivor when its lease lapses (or found by the retry),
 *     and its reservation step commits once, with its checkpoint.
 *  4. Every acknowledged order's notification (order-created event: outbox -> JetStream -> the
 *     notifier's consumer group) arrives, once: bounded wait, then no order notified twice.
 *  6. Every checkout workflow ends (the victim's are taken over by survivors), and the payments
 *     reconcile exactly: one captured payment per acknowledged order, none left authorized.
 *  5. The survivors keep serving: no request to a surviving gateway ever answers 500; and of the
 *     requests sent to survivors after both survivors dropped the victim from their registries
 *     (the failure detector's verdict, observed through GET /status), at least 99% succeed.
 *     Requests sent between the kill and that verdict may wait for the verdict (a call pending on
 *     the dead node fails over when it is declared dead) and are only counted, not judged.
 *
 * Nothing asserts a timing: every wait is a bounded poll. Each load worker draws its choices from
 * a PRNG seeded from PP_FAULT_SEED (printed) and its index, so a failing run's request sequences can
 * be replayed (how far each worker gets before the stop depends on the machine).
 * Clean-up: children killed, the PostgreSQL schemas dropped, the namespace's Redis keys and
 * JetStream topics deleted.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/util/index.js';
import { statusCommand } from '../../src/cli/status.js';
import { openQueue } from '../../src/queue/index.js';
import { openStore } from '../../src/store/index.js';
import { openTransactions, openWorkflows } from '../../src/tx/index.js';
import { TABLES } from '../../examples/shop/schema.js';
import { killChildren, startChild, type RunningChild } from '../helpers/child.js';
import { needEngine } from '../helpers/engines.js';
import { deleteKeysWithPrefix } from '../helpers/redis.js';
import { waitUntil } from '../helpers/wait.js';
import { dropSchemas, PG_BASE } from '../store/helpers.js';
import { SHOP_TOPICS } from '../helpers/shop-http.js';

const engines = await Promise.all([needEngine('postgres'), needEngine('redis'), needEngine('nats')]);
const run = engines.every(Boolean);

const REDIS = 'redis://127.0.0.1:6379';
const NATS = 'nats://127.0.0.1:4222';
const SEED = Number(process.env.PP_FAULT_SEED ?? 20_240_607);
/** Users placing orders (seeded users user1..userN). */
const USERS = 10;
/** SKUs the orders draw from (p00001..): few enough that orders contend on rows, many enough that
 * no single SKU is a hot row for every checkout. */
const SKUS = 60;
const WORKERS = 16;
/** Share of the workers' operations that place an order (the rest are reads). */
const ORDER_SHARE = 0.5;
/** One HTTP request's bound: above the shop's 10 s call deadline, so the server answers first. */
const REQUEST_TIMEOUT_MS = 20_000;
/** Attempts of one placement (first included) within the load; the rest is the recovery pass. */
const PLACE_ATTEMPTS_MAX = 6;
/** Checkouts the load places in all: the kill lands in the middle of them (issue 12). */
const CHECKOUTS_MIN = Number(process.env.PP_FAULT_CHECKOUTS ?? 1000);
/** Before the kill: orders acknowledged through each gateway (about half of CHECKOUTS_MIN in all). */
const WARMUP_ACKS_PER_GATEWAY = Math.max(10, Math.floor(CHECKOUTS_MIN / 6));
/** After the verdict: requests to survivors that must complete before the load stops. */
const AFTER_VERDICT_REQUESTS_MIN = 300;
const AFTER_VERDICT_MS_MIN = 3_000;
const REPLAYED_KEYS = 10;

interface Answer {
  /** HTTP status, or 0 when no response came (connection refused or reset, timeout). */
  status: number;
  body: unknown;
  error?: string;
}

async function http(base: string, method: string, path: string, opts: { token?: string; body?: unknown } = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  try {
    const res = await fetch(`${base}${path}`, {
      method,
      headers,
      ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body };
  } catch (err) {
    const e = err as { name?: string; cause?: { code?: string } };
    return { status: 0, body: undefined, error: e.cause?.code ?? e.name ?? String(err) };
  }
}

interface StatusDoc {
  nodes?: { nodeId: string; status?: string }[];
  services?: { name: string; instances?: string[] }[];
}

/** One request the load sent: to which gateway, when, and what came back. */
interface Attempt {
  gateway: number;
  kind: 'place' | 'read';
  sentMs: number;
  doneMs: number;
  status: number;
}

interface OrderItem {
  sku: string;
  qty: number;
}

/** One order the client wants placed, under one idempotency key. */
interface Placement {
  key: string;
  user: number;
  items: OrderItem[];
  /** orderIds named by the 201s for this key (all must be the same one). */
  acks: string[];
  attempts: number;
}

interface ShopNode {
  child: RunningChild;
  url: string;
  nodeId: string;
}

describe.runIf(run)('examples/shop: three nodes on PostgreSQL + Redis + NATS, one SIGKILLed under load', () => {
  const ns = `shopfault_${process.pid}_${Date.now().toString(36)}`;
  let dataDir: string | undefined;

  afterAll(async () => {
    killChildren();
    const q = await openQueue({ engine: NATS });
    try {
      await Promise.allSettled(SHOP_TOPICS.map((t) => q.deleteTopic(`${ns}-${t}`)));
    } finally {
      await q.close();
    }
    await dropSchemas(`${ns}_`);
    await deleteKeysWithPrefix(REDIS, `${ns}:`);
    if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
  });

  function startNode(i: number, seed: boolean): { nodeId: string; child: RunningChild } {
    dataDir ??= mkdtempSync(join(tmpdir(), 'pp-shop-cluster-'));
    const nodeId = `${ns}-n${i}`;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PP_STORE: `${PG_BASE}?schema=${ns}`,
      PP_SHARDS: '2',
      PP_REDIS: REDIS,
      PP_NATS: NATS,
      PP_NAMESPACE: ns,
      PP_NODE_ID: nodeId,
      PP_PORT: '0',
      PP_HOST: '127.0.0.1',
      PP_SEED: seed ? '1' : '0',
      PP_DATA_DIR: join(dataDir, `n${i}`),
      PP_LOG_LEVEL: 'error',
    };
    return { nodeId, child: startChild(['--import', 'tsx', 'examples/shop/main.ts'], { env }) };
  }

  async function listening(n: { nodeId: string; child: RunningChild }): Promise<ShopNode> {
    // examples/shop/main.ts prints "… serving <url>" once the node serves (`powerplant start`: "listening on <url>").
    const m = await n.child.waitForLine(/(?:serving|listening on) (http:\/\/[^\s]+)/, 120_000);
    return { ...n, url: m[1]! };
  }

  it('loses no acknowledged order, keeps stock exact, notifies every order, and keeps serving', async () => {
    let checkouts: Record<string, unknown> = {};
    const t0 = performance.now();
    // The first node seeds; the others start once it is ready (seeding is idempotent, but this
    // keeps three processes from seeding at once on a small machine).
    const first = await listening(startNode(0, true));
    const rest = await Promise.all([listening(startNode(1, false)), listening(startNode(2, false))]);
    const nodes: ShopNode[] = [first, ...rest];
    const ids = nodes.map((n) => n.nodeId);

    // The cluster has formed: every gateway's node sees the three nodes and three instances of each service.
    const formed = async (n: ShopNode): Promise<boolean> => {
      const r = await http(n.url, 'GET', '/status');
      if (r.status !== 200) return false;
      const doc = r.body as StatusDoc;
      const alive = (doc.nodes ?? []).filter((x) => x.status === 'alive').map((x) => x.nodeId);
      return ids.every((id) => alive.includes(id)) && (doc.services ?? []).length === 9 && (doc.services ?? []).every((s) => (s.instances ?? []).length === 3);
    };
    await waitUntil(async () => (await Promise.all(nodes.map(formed))).every(Boolean), 30_000, 'three nodes with nine services each, seen from every gateway');
    const startedMs = performance.now() - t0;

    // `powerplant status` reads the running cluster: three alive nodes, three instances of each
    // service, two PostgreSQL shards.
    let statusText = '';
    const statusCode = await statusCommand(['--url', nodes[2]!.url], { out: (s) => (statusText += s), err: (s) => (statusText += s) });
    expect(statusCode, statusText).toBe(0);
    // (alive, or suspect for a moment if the loaded machine delayed a heartbeat since the check above)
    for (const id of ids) expect(statusText).toMatch(new RegExp(`^${id}( \\(this one\\))?\\s+\\S+\\s+\\S+\\s+(alive|suspect)\\s+users@1 `, 'm'));
    for (const svc of ['users', 'catalog', 'inventory', 'orders', 'messages', 'notifier', 'payments', 'wallet']) expect(statusText).toMatch(new RegExp(`^${svc}\\s+1\\s+3\\s`, 'm'));
    expect(statusText).toMatch(new RegExp(`^s0\\s+postgres\\s+postgres://\\S+schema=${ns}_0$`, 'm'));
    expect(statusText).toMatch(new RegExp(`^s1\\s+postgres\\s+postgres://\\S+schema=${ns}_1$`, 'm'));

    // Sessions for the users, and the stock before any order.
    const tokens: string[] = [];
    for (let u = 0; u < USERS; u++) {
      const r = await http(nodes[u % 3]!.url, 'POST', '/sessions', { body: { email: `user${u + 1}@example.com`, password: `password-${u + 1}` } });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      tokens.push((r.body as { token: string }).token);
    }
    const skus = Array.from({ length: SKUS }, (_, i) => `p${String(i + 1).padStart(5, '0')}`);
    const stockBefore = new Map<string, number>();
    for (const sku of skus) {
      const r = await http(nodes[0]!.url, 'GET', `/inventory/${sku}`);
      expect(r.status).toBe(200);
      stockBefore.set(sku, (r.body as { available: number }).available);
    }

    // ---- the load ---------------------------------------------------------------------------------
    const attempts: Attempt[] = [];
    const placements: Placement[] = [];
    const acked = (p: Placement): boolean => p.acks.length > 0;
    const alive = [true, true, true];
    let rr = 0;
    const pickGateway = (avoid?: number): number => {
      for (let i = 0; i < 3; i++) {
        const g = rr++ % 3;
        if (alive[g] && g !== avoid) return g;
      }
      return alive.findIndex((a, g) => a && g !== avoid);
    };
    const unexpected: string[] = [];
    let stopLoad = false;

    const send = async (g: number, kind: Attempt['kind'], method: string, path: string, opts: { token?: string; body?: unknown }): Promise<Answer> => {
      const sentMs = performance.now();
      const a = await http(nodes[g]!.url, method, path, opts);
      attempts.push({ gateway: g, kind, sentMs, doneMs: performance.now(), status: a.status });
      return a;
    };

    /** Places `p` until a 201 or a definitive 4xx, each attempt on the next gateway, at most `max` attempts now. */
    const place = async (p: Placement, max: number): Promise<void> => {
      let g = pickGateway();
      for (let i = 0; i < max && !acked(p); i++) {
        p.attempts++;
        const a = await send(g, 'place', 'POST', '/orders', { token: tokens[p.user]!, body: { items: p.items, idempotencyKey: p.key } });
        if (a.status === 201) {
          p.acks.push((a.body as { orderId: string }).orderId);
          return;
        }
        if (a.status >= 400 && a.status < 500) {
          unexpected.push(`POST /orders ${p.key} -> ${a.status} ${JSON.stringify(a.body)}`);
          return;
        }
        g = pickGateway(g);
        await new Promise((r) => setTimeout(r, 20 * (i + 1)));
      }
    };

    const read = async (rand: () => number): Promise<void> => {
      const g = pickGateway();
      const u = Math.floor(rand() * USERS);
      const x = rand();
      let a: Answer;
      if (x < 0.35) a = await send(g, 'read', 'GET', `/products/${skus[Math.floor(rand() * SKUS)]!}`, {});
      else if (x < 0.6) a = await send(g, 'read', 'GET', `/inventory/${skus[Math.floor(rand() * SKUS)]!}`, {});
      else if (x < 0.85) a = await send(g, 'read', 'GET', '/orders?limit=5', { token: tokens[u]! });
      else {
        const mine = placements.filter((p) => p.user === u && acked(p));
        const p = mine[Math.floor(rand() * mine.length)];
        a = p === undefined ? await send(g, 'read', 'GET', '/categories', {}) : await send(g, 'read', 'GET', `/orders/${p.acks[0]!}`, { token: tokens[u]! });
      }
      if (a.status >= 400 && a.status < 500) unexpected.push(`read -> ${a.status} ${JSON.stringify(a.body)}`);
    };

    // Each worker draws its choices from its own PRNG (seed + worker index), so its sequence of
    // operations is reproducible; only how far each gets before the stop depends on the machine.
    const worker = async (w: number): Promise<void> => {
      const rand = seededRandom(SEED + w);
      let seq = 0;
      while (!stopLoad) {
        if (rand() < ORDER_SHARE) {
          const n = rand() < 0.5 ? 1 : 2;
          const first = Math.floor(rand() * SKUS);
          const items: OrderItem[] = [];
          for (let i = 0; i < n; i++) items.push({ sku: skus[(first + i * 7) % SKUS]!, qty: 1 + Math.floor(rand() * 3) });
          const p: Placement = { key: `k${SEED}-w${w}-${seq++}`, user: Math.floor(rand() * USERS), items, acks: [], attempts: 0 };
          placements.push(p);
          await place(p, PLACE_ATTEMPTS_MAX);
        } else {
          await read(rand);
        }
      }
    };
    const workers = Array.from({ length: WORKERS }, (_, w) => worker(w));
    let loadError: unknown;
    const loadDone = Promise.all(workers).catch((e: unknown) => {
      loadError = e;
    });

    try {
      // Warm-up: every gateway has acknowledged orders.
      const ackedVia = (g: number): number => attempts.filter((a) => a.gateway === g && a.kind === 'place' && a.status === 201).length;
      await waitUntil(() => [0, 1, 2].every((g) => ackedVia(g) >= WARMUP_ACKS_PER_GATEWAY), 120_000, 'orders acknowledged through every gateway before the kill');

      // The kill.
      const victim = 1;
      const killMs = performance.now();
      alive[victim] = false;
      nodes[victim]!.child.proc.kill('SIGKILL');
      await nodes[victim]!.child.exited;

      // The verdict: both survivors' registries drop the victim (its heartbeats stopped).
      const survivors = [0, 2];
      const droppedAt = new Map<number, number>();
      await waitUntil(
        async () => {
          for (const g of survivors) {
            if (droppedAt.has(g)) continue;
            const r = await http(nodes[g]!.url, 'GET', '/status');
            const doc = r.body as StatusDoc;
            if (r.status === 200 && !(doc.nodes ?? []).some((x) => x.nodeId === ids[victim])) droppedAt.set(g, performance.now());
          }
          return droppedAt.size === survivors.length;
        },
        30_000,
        'both survivors to drop the killed node',
      );
      const verdictMs = Math.max(...droppedAt.values());

      // Keep going after the verdict.
      const afterVerdict = (): Attempt[] => attempts.filter((a) => a.gateway !== victim && a.sentMs >= verdictMs);
      await waitUntil(
        () => afterVerdict().length >= AFTER_VERDICT_REQUESTS_MIN && performance.now() - verdictMs >= AFTER_VERDICT_MS_MIN && placements.filter(acked).length >= CHECKOUTS_MIN,
        120_000,
        `${AFTER_VERDICT_REQUESTS_MIN} requests to the survivors after the verdict and ${CHECKOUTS_MIN} checkouts in all`,
      );
      stopLoad = true;
      await loadDone;
      expect(loadError).toBeUndefined();

      // Recovery pass: a placement the load gave up on is retried with its key until it is acknowledged.
      const unackedAfterLoad = placements.filter((p) => !acked(p)).length;
      for (const p of placements.filter((x) => !acked(x))) {
        await waitUntil(
          async () => {
            await place(p, 1);
            return acked(p) || unexpected.length > 0;
          },
          30_000,
          `placement ${p.key} acknowledged on retry`,
        );
      }

      // ---- the checks -----------------------------------------------------------------------------
      expect(unexpected, 'no 4xx for well-formed requests').toEqual([]);
      expect(placements.every(acked)).toBe(true);

      // 2. One order per key, whatever the retries: every 201 named the same orderId; replaying some keys now too.
      for (const p of placements) expect(new Set(p.acks).size, `key ${p.key}`).toBe(1);
      const replayed = placements.filter((_, i) => i % Math.max(1, Math.floor(placements.length / REPLAYED_KEYS)) === 0).slice(0, REPLAYED_KEYS);
      for (const [i, p] of replayed.entries()) {
        const r = await http(nodes[survivors[i % 2]!]!.url, 'POST', '/orders', { token: tokens[p.user]!, body: { items: p.items, idempotencyKey: p.key } });
        expect(r.status).toBe(201);
        expect((r.body as { orderId: string }).orderId).toBe(p.acks[0]);
      }

      // 1. Nothing acknowledged is lost: each order by id, and each user's list is exactly their orders.
      for (const [i, p] of placements.entries()) {
        const r = await http(nodes[survivors[i % 2]!]!.url, 'GET', `/orders/${p.acks[0]!}`, { token: tokens[p.user]! });
        expect(r.status, `GET /orders/${p.acks[0]!}`).toBe(200);
        expect((r.body as { items: OrderItem[] }).items.map((it) => ({ sku: it.sku, qty: it.qty }))).toEqual(p.items);
      }
      const listAll = async (path: string, token: string, g: number): Promise<{ orderId: string }[]> => {
        const all: { orderId: string }[] = [];
        let cursor: string | undefined;
        do {
          const r = await http(nodes[g]!.url, 'GET', `${path}?limit=100${cursor === undefined ? '' : `&cursor=${encodeURIComponent(cursor)}`}`, { token });
          expect(r.status, `GET ${path}`).toBe(200);
          const page = r.body as { items: { orderId: string }[]; cursor?: string };
          all.push(...page.items);
          cursor = page.cursor;
        } while (cursor !== undefined);
        return all;
      };
      for (let u = 0; u < USERS; u++) {
        const want = placements.filter((p) => p.user === u).map((p) => p.acks[0]!).sort();
        const listed = (await listAll('/orders', tokens[u]!, survivors[u % 2]!)).map((o) => o.orderId);
        expect(listed.length, `user${u + 1}: no order listed twice`).toBe(new Set(listed).size);
        expect(listed.sort(), `user${u + 1}'s orders`).toEqual(want);
      }

      // 3. Stock: exactly what the acknowledged orders took.
      const taken = new Map<string, number>();
      for (const p of placements) for (const it of p.items) taken.set(it.sku, (taken.get(it.sku) ?? 0) + it.qty);
      for (const sku of skus) {
        const r = await http(nodes[survivors[0]!]!.url, 'GET', `/inventory/${sku}`);
        expect(r.status).toBe(200);
        expect((r.body as { available: number }).available, `stock of ${sku}`).toBe(stockBefore.get(sku)! - (taken.get(sku) ?? 0));
      }

      // 4. Every order's notification arrives (bounded wait), and once.
      const notifWaitStart = performance.now();
      for (let u = 0; u < USERS; u++) {
        const want = new Set(placements.filter((p) => p.user === u).map((p) => p.acks[0]!));
        let got: { orderId: string }[] = [];
        await waitUntil(
          async () => {
            got = await listAll('/notifications', tokens[u]!, survivors[u % 2]!);
            return [...want].every((id) => got.some((n) => n.orderId === id));
          },
          45_000,
          `user${u + 1}'s ${want.size} notifications`,
        );
        const ids = got.map((n) => n.orderId);
        expect(ids.length, `user${u + 1}: no order notified twice`).toBe(new Set(ids).size);
        expect(new Set(ids)).toEqual(want);
      }
      const notifWaitMs = performance.now() - notifWaitStart;

      // 6. Every checkout ended (the victim's were taken over by a survivor when their leases
      //    lapsed): none is left running, and the payments reconcile exactly with the orders —
      //    one captured payment per acknowledged order for its total, nothing left authorized.
      const store = await openStore({ engine: `${PG_BASE}?schema=${ns}`, shards: 2, sweep: { intervalMs: 0 } });
      try {
        const txs = await openTransactions(store, { recoverIntervalMs: 0 });
        const wf = await openWorkflows(store, txs, { recoverIntervalMs: 0 });
        let counts: Record<string, number> = {};
        await waitUntil(async () => (counts = await wf.counts()).running === 0, 60_000, 'every checkout workflow ended');
        expect(counts.completed).toBeGreaterThanOrEqual(placements.length);
        const payments = await store.table('payments', TABLES.payments);
        const rows: { orderId: string; state: string; amountCents: number }[] = [];
        let cursor: string | undefined;
        do {
          const page = await payments.query({ limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
          rows.push(...page.items.map((i) => i.row));
          cursor = page.cursor;
        } while (cursor !== undefined);
        const captured = rows.filter((r) => r.state === 'captured');
        const ackedIds = placements.map((p) => p.acks[0]!).sort();
        expect(captured.map((r) => r.orderId).sort(), 'one captured payment per acknowledged order').toEqual(ackedIds);
        expect(rows.filter((r) => r.state === 'authorized'), 'no payment left authorized').toEqual([]);
        checkouts = { workflows: counts, payments: rows.length, captured: captured.length };
        await wf.close();
        await txs.close();
      } finally {
        await store.close();
      }

      // 5. The survivors kept serving.
      const toSurvivors = attempts.filter((a) => a.gateway !== victim);
      const fivehundreds = toSurvivors.filter((a) => a.status === 500);
      expect(fivehundreds, 'no 500 from a surviving gateway').toEqual([]);
      const after = toSurvivors.filter((a) => a.sentMs >= verdictMs);
      const afterOk = after.filter((a) => a.status >= 200 && a.status < 300).length;
      const window = toSurvivors.filter((a) => a.sentMs >= killMs && a.sentMs < verdictMs);
      const windowOk = window.filter((a) => a.status >= 200 && a.status < 300).length;
      // Sent to the victim before the kill, answered (or failed) after it: in flight when it died.
      const inFlightAtKill = attempts.filter((a) => a.gateway === victim && a.sentMs < killMs && a.doneMs >= killMs);
      const inFlightOk = inFlightAtKill.filter((a) => a.status >= 200 && a.status < 300).length;
      const successAfter = afterOk / after.length;
      expect(after.length).toBeGreaterThanOrEqual(AFTER_VERDICT_REQUESTS_MIN);
      expect(successAfter, `success rate after the verdict (${afterOk}/${after.length})`).toBeGreaterThanOrEqual(0.99);

      const retried = placements.filter((p) => p.attempts > 1).length;
      console.log(
        `shop-cluster (seed ${SEED}): cluster up in ${(startedMs / 1000).toFixed(1)} s; ${placements.length} orders acknowledged, 0 lost, ` +
          `${retried} needed a retry with their key (${unackedAfterLoad} after the load, in the recovery pass); ${attempts.length} requests; ` +
          `victim dropped ${((verdictMs - killMs) / 1000).toFixed(2)} s after SIGKILL (survivors: ${[...droppedAt.values()].map((t) => ((t - killMs) / 1000).toFixed(2)).join(', ')} s); ` +
          `kill->verdict window: ${windowOk}/${window.length} ok at survivors; after: ${afterOk}/${after.length} ok (${(successAfter * 100).toFixed(2)} %); ` +
          `${inFlightAtKill.length} requests were in flight to the victim (${inFlightOk} answered before it died); notifications complete ${(notifWaitMs / 1000).toFixed(1)} s after the checks began; ` +
          `checkouts: ${JSON.stringify(checkouts)}`,
      );
    } finally {
      stopLoad = true;
      await loadDone;
    }
  }, 400_000);
});
