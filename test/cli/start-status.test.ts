/**
 * The `powerplant` bin as a user runs it (`node bin/powerplant.js …`, a child process): `start`
 * with the shop on a temporary data directory and a free port, `status` against it, `start` with a
 * user's services module, and wrong command lines. Children are SIGKILLed after the suite whatever
 * happened (test/helpers/child.ts).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { killChildren, startChild } from '../helpers/child.js';
import { needEngine } from '../helpers/engines.js';
import { waitUntil } from '../helpers/wait.js';

const natsUp = await needEngine('nats');

const root = fileURLToPath(new URL('../..', import.meta.url));
const BIN = 'bin/powerplant.js';
/** The one line `start` prints first: where it listens. */
const LISTENING = /^listening on (http:\/\/\S+)$/;

/** Runs the bin to completion; resolves with its exit code and output. */
function runBin(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const ch = spawn(process.execPath, [BIN, ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    ch.stdout.on('data', (d: Buffer) => (out += d.toString()));
    ch.stderr.on('data', (d: Buffer) => (err += d.toString()));
    ch.once('error', reject);
    ch.once('exit', (code) => resolve({ code, out, err }));
  });
}

afterAll(() => killChildren());

describe('powerplant start (the shop) and status', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'pp-cli-shop-'));
  afterAll(() => {
    killChildren();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('starts the shop on the embedded default with seed data, prints its URL and examples; status shows services and shards', async () => {
    const env = { ...process.env, PP_DATA_DIR: dataDir, PP_PORT: '0', PP_SHARDS: '2', PP_LOG_LEVEL: 'warn' };
    const shop = startChild([BIN, 'start', 'examples/shop'], { env });
    const url = (await shop.waitForLine(LISTENING, 90_000))[1]!;
    await shop.waitForLine(/Ctrl-C to stop/, 10_000);
    expect(shop.output()).toContain(`curl ${url}/products/p00017`);

    // Seed data is there: a product and a session for a seeded user.
    const p = await fetch(`${url}/products/p00017`);
    expect(p.status).toBe(200);
    expect(await p.json()).toMatchObject({ id: 'p00017' });
    const s = await fetch(`${url}/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'user1@example.com', password: 'password-1' }) });
    expect(s.status).toBe(201);

    const st = await runBin(['status', '--url', url]);
    expect(st.err).toBe('');
    expect(st.code).toBe(0);
    for (const svc of ['users', 'catalog', 'inventory', 'orders', 'messages', 'notifier', 'payments', 'wallet']) expect(st.out).toMatch(new RegExp(`^${svc}\\s+\\d+\\s+1\\s`, 'm'));
    expect(st.out).toMatch(/partitions: 2 shards/);
    expect(st.out).toMatch(/^s0\s+sqlite\s/m);
    expect(st.out).toMatch(/^s1\s+sqlite\s/m);
    // Orders are partitioned by user, stock by SKU.
    expect(st.out).toMatch(/^orders\s+table\s+.*\s+userId\s+hash: /m);
    expect(st.out).toMatch(/^inventory\s+table\s+sku\s+sku\s+hash: /m);
    expect(st.out).toMatch(/\(this one\)\s+\S+\s+running\s+alive/);
    // The workflows and transactions the shop runs on (src/tx).
    expect(st.out).toMatch(/^workflows: running \d+, completed \d+, failed \d+, compensated \d+, cancelled \d+$/m);
    expect(st.out).toMatch(/^transactions: \d+ one-shard, \d+ two-phase/m);

    const js = await runBin(['status', '--url', url, '--json']);
    expect(js.code).toBe(0);
    const doc = JSON.parse(js.out) as { services: { name: string }[]; partitions: { shards: unknown[] } };
    expect(doc.services.map((x) => x.name).sort()).toEqual(['catalog', 'inventory', 'messages', 'notifier', 'orders', 'payments', 'stats', 'users', 'wallet']);
    expect(doc.partitions.shards).toHaveLength(2);

    // SIGTERM stops it gracefully (exit code 0).
    shop.proc.kill('SIGTERM');
    expect(await shop.exited).toEqual({ code: 0, signal: null });
  });
});

describe('powerplant start <entry>', () => {
  it('hosts a user services module behind the gateway and prints its routes', async () => {
    const node = startChild([BIN, 'start', 'test/cli/fixtures/greeter.ts', '--port', '0'], { env: { ...process.env, PP_NODE_ID: 'cli-entry', PP_PORT: '' } });
    const url = (await node.waitForLine(LISTENING, 60_000))[1]!;
    await node.waitForLine(/Ctrl-C to stop/, 10_000);
    expect(node.output()).toMatch(/GET \/hello\/:name\s+-> greeter\.hello/);
    expect(node.output()).toMatch(/POST \/sum\s+-> counter\.add/);

    const hello = await fetch(`${url}/hello/bob`);
    expect(hello.status).toBe(200);
    expect(await hello.json()).toEqual({ greeting: 'hello, bob', by: 'cli-entry' });
    const sum = await fetch(`${url}/sum`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":2,"b":40}' });
    expect(await sum.json()).toEqual({ sum: 42 });
    const bad = await fetch(`${url}/sum`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":"x","b":1}' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { code: 'PP_ERR_VALIDATION', field: 'params.a' } });
    expect((await fetch(`${url}/hello/nobody`)).status).toBe(404);

    const st = await runBin(['status', '--url', url]);
    expect(st.code).toBe(0);
    expect(st.out).toMatch(/^cli-entry \(this one\)\s+\S+\s+running\s+alive\s+greeter@1 counter@1$/m);
    expect(st.out).toMatch(/^greeter\.hello\s+1\s+0\s+closed 1$/m);

    node.proc.kill('SIGTERM');
    expect(await node.exited).toEqual({ code: 0, signal: null });
  });

  it('refuses a module that exports no services, and a missing module, with exit code 2', async () => {
    const a = await runBin(['start', 'test/cli/fixtures/not-services.ts', '--port', '0']);
    expect(a.code).toBe(2);
    expect(a.err).toMatch(/must export `services`/);
    const b = await runBin(['start', 'test/cli/fixtures/missing.ts', '--port', '0']);
    expect(b.code).toBe(2);
    expect(b.err).toMatch(/no module at .*missing\.ts/);
  });
});

describe('powerplant start <entry>: an application module, and no entry', () => {
  it('runs a start(ctx) module from a directory; SIGTERM calls its stop() and exits 0', async () => {
    const app = startChild([BIN, 'start', 'test/cli/fixtures/app', '--port', '0'], { env: { ...process.env, PP_PORT: '', FIXTURE_GREETING: 'from the bin' } });
    const url = (await app.waitForLine(LISTENING, 60_000))[1]!;
    await app.waitForLine(/Ctrl-C to stop/, 10_000);
    expect(app.output()).toMatch(/^listening on http:\/\/\S+\n\nfixture app \(transport inproc:\/\/\)\n/);
    expect(await (await fetch(url)).json()).toMatchObject({ entry: 'test/cli/fixtures/app', greeting: 'from the bin', transport: 'inproc://' });
    app.proc.kill('SIGTERM');
    expect(await app.exited).toEqual({ code: 0, signal: null });
    expect(app.output()).toContain('fixture app: stopped');
  });

  it('without an entry exits 2 and says to name a module', async () => {
    const r = await runBin(['start', '--port', '0']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/powerplant start: name the module to start, e\.g\. `powerplant start examples\/shop`/);
  });
});

describe.runIf(natsUp)('powerplant start <entry> --nats: two processes form one cluster', () => {
  it('each node sees the other; status lists both nodes and two instances of each service', async () => {
    const env = { ...process.env, PP_NAMESPACE: `cli${process.pid}${Date.now().toString(36)}`, PP_PORT: '' };
    const a = startChild([BIN, 'start', 'test/cli/fixtures/greeter.ts', '--port', '0', '--nats', 'nats://127.0.0.1:4222'], { env: { ...env, PP_NODE_ID: 'cli-a' } });
    const b = startChild([BIN, 'start', 'test/cli/fixtures/greeter.ts', '--port', '0'], { env: { ...env, PP_NODE_ID: 'cli-b', PP_NATS: 'nats://127.0.0.1:4222' } });
    const [urlA] = await Promise.all([a.waitForLine(LISTENING, 60_000).then((m) => m[1]!), b.waitForLine(LISTENING, 60_000)]);
    await a.waitForLine(/Ctrl-C to stop/, 10_000);
    expect(a.output()).toContain('transport nats://127.0.0.1:4222');

    // Calls through A's gateway are balanced over both nodes once A has discovered B.
    const servedBy = new Set<string>();
    await waitUntil(async () => {
      const r = await fetch(`${urlA}/hello/ann`);
      if (r.status === 200) servedBy.add(((await r.json()) as { by: string }).by);
      return servedBy.size === 2;
    }, 30_000, 'calls through one gateway served by both nodes');

    const st = await runBin(['status', '--url', urlA]);
    expect(st.code).toBe(0);
    expect(st.out).toMatch(/^nodes \(2\)$/m);
    expect(st.out).toMatch(/^cli-a \(this one\)\s+\S+\s+running\s+alive\s/m);
    expect(st.out).toMatch(/^cli-b\s+\S+\s+-\s+alive\s+greeter@1 counter@1$/m);
    expect(st.out).toMatch(/^greeter\s+1\s+2\s+(cli-a cli-b|cli-b cli-a)\s/m);

    a.proc.kill('SIGTERM');
    b.proc.kill('SIGTERM');
    expect((await a.exited).code).toBe(0);
    expect((await b.exited).code).toBe(0);
  });
});

describe('powerplant: wrong command lines', () => {
  it('exits 2 naming the unknown command or option', async () => {
    const [a, b, c, h, d] = await Promise.all([
      runBin(['frobnicate']), runBin(['start', '--bogus']), runBin(['status', '--json=yes']), runBin(['help']), runBin(['bench', '--bogus']),
    ]);
    expect(a.code).toBe(2);
    expect(a.err).toMatch(/unknown command "frobnicate"/);
    expect(b.code).toBe(2);
    expect(b.err).toMatch(/powerplant start: unknown option --bogus/);
    expect(c.code).toBe(2);
    expect(c.err).toMatch(/--json takes no value/);
    expect(d.code).toBe(2);
    expect(d.err).toMatch(/unknown option --bogus/);
    expect(h.code).toBe(0);
    for (const cmd of ['start', 'status', 'bench', 'simulate']) expect(h.out).toMatch(new RegExp(`^  ${cmd}\\s`, 'm'));
  });
});
