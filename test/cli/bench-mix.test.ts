/**
 * The load generator's contract with a mix (src/cli/loadgen.ts: `LoadMix`), on a mix that is not
 * the shop's (test/cli/fixtures/mix.ts) against a small node:http server under a path prefix: the
 * setup's discovery, the weights, the requests as the builder made them (method, path, headers,
 * body), the mix's summary and info in the result, and `powerplant bench <entry>` loading the
 * module. No timing assertions: counts and shapes only.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { benchCommand } from '../../src/cli/bench.js';
import { formatMixTable, runMix } from '../../src/cli/loadgen.js';
import { parseHgrm } from '../../src/observe/index.js';
import { loadMix, makeMix } from './fixtures/mix.js';

const ITEMS = 10;

interface FixtureServer {
  url: string;
  server: Server;
  config: number;
  items: number[];
  echoes: number;
  /** POSTs whose body, content type or x-connection header was not what the mix builds. */
  badEchoes: number;
  /** Requests outside /api (the base path was lost). */
  stray: number;
}

async function startServer(): Promise<FixtureServer> {
  const f: FixtureServer = { url: '', server: undefined as unknown as Server, config: 0, items: new Array<number>(ITEMS).fill(0), echoes: 0, badEchoes: 0, stray: 0 };
  f.server = createServer((req, res) => {
    const json = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const path = req.url ?? '';
    if (!path.startsWith('/api/')) {
      f.stray++;
      return json(404, { error: 'not under /api' });
    }
    const rest = path.slice(4);
    if (req.method === 'GET' && rest === '/config') {
      f.config++;
      return json(200, { items: ITEMS });
    }
    const item = /^\/items\/(\d+)$/.exec(rest);
    if (req.method === 'GET' && item !== null) {
      f.items[Number(item[1])]!++;
      return json(200, { n: Number(item[1]) });
    }
    if (req.method === 'POST' && rest === '/echo') {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        f.echoes++;
        let parsed: { connection?: unknown } | undefined;
        try {
          parsed = JSON.parse(body) as { connection?: unknown };
        } catch {
          parsed = undefined;
        }
        if (req.headers['content-type'] !== 'application/json' || parsed === undefined || String(parsed.connection) !== req.headers['x-connection']) f.badEchoes++;
        json(201, { ok: true });
      });
      return;
    }
    json(404, { error: 'no route' });
  });
  await new Promise<void>((resolve) => f.server.listen(0, '127.0.0.1', resolve));
  f.url = `http://127.0.0.1:${(f.server.address() as AddressInfo).port}/api/`;
  return f;
}

const stopServer = (f: FixtureServer | undefined): Promise<void> =>
  new Promise((resolve) => {
    if (f === undefined) return resolve();
    f.server.closeAllConnections();
    f.server.close(() => resolve());
  });

describe('runMix with a mix that is not the shop', () => {
  let f: FixtureServer;
  beforeAll(async () => {
    f = await startServer();
  });
  afterAll(() => stopServer(f));

  it('runs the setup once, sends the requests the builder makes, and reports the mix in the result', async () => {
    const r = await runMix({ mix: loadMix, url: f.url, connections: 4, durationMs: 700, warmupMs: 100, seed: 3 });
    expect(f.config).toBe(1);
    expect(f.stray).toBe(0);
    expect(f.badEchoes).toBe(0);
    expect(r.mix).toBe('fixture');
    expect(r.summary).toBe(`${ITEMS} items`);
    expect(r.items).toBe(ITEMS); // the plan's info, merged into the result
    expect(r.endpoints.map((e) => [e.name, e.label, e.weight])).toEqual([['item', 'GET /items/:n', 0.75], ['echo', 'POST /echo', 0.25]]);
    expect(r.errors).toBe(0);
    const served = f.items.reduce((a, b) => a + b, 0) + f.echoes;
    expect(served).toBe(r.requests + r.warmupRequests);
    expect(r.perEndpoint.item.count + r.perEndpoint.echo.count).toBe(r.requests);
    expect(r.endpoints.find((e) => e.name === 'echo')!.byStatus['201']).toBe(r.endpoints.find((e) => e.name === 'echo')!.requests);
    expect(formatMixTable(r)).toMatch(new RegExp(`^${f.url.replace(/[/.]/g, '\\$&')}: 4 connections, .* warm-up; ${ITEMS} items, seed 3\\n`));
  });

  it('weights from the options override the mix: echo off sends no POST', async () => {
    const before = f.echoes;
    const r = await runMix({ mix: loadMix, url: f.url, connections: 2, durationMs: 300, warmupMs: 0, weights: { echo: 0 } });
    expect(f.echoes).toBe(before);
    expect(r.endpoints.find((e) => e.name === 'echo')!.requests).toBe(0);
    expect(r.endpoints.find((e) => e.name === 'item')!.weight).toBe(1);
  });

  it('ends the run with the error of a request builder that throws, not as a server error', async () => {
    await expect(runMix({ mix: makeMix({ throwOn: 'echo' }), url: f.url, connections: 2, durationMs: 5_000, warmupMs: 0 })).rejects.toThrow(
      "the mix's request builder threw for echo: fixture: this endpoint cannot be built",
    );
  });

  it('refuses a malformed mix and info that would overwrite a result field, naming the field', async () => {
    const bad = { ...loadMix, endpoints: [{ name: 'a b', label: 'x', weight: 1 }] };
    await expect(runMix({ mix: bad as never, url: f.url })).rejects.toThrow(expect.objectContaining({ code: 'PP_ERR_INVALID_ARGUMENT', field: 'mix.endpoints[0].name' }));
    const twice = { ...loadMix, endpoints: [...loadMix.endpoints, loadMix.endpoints[0]!] };
    await expect(runMix({ mix: twice, url: f.url })).rejects.toThrow(expect.objectContaining({ field: 'mix.endpoints[2].name' }));
    await expect(runMix({ mix: loadMix, url: f.url, weights: { nope: 1 } as never })).rejects.toThrow(expect.objectContaining({ field: 'weights' }));
    await expect(runMix({ mix: makeMix({ info: { requests: 1 } }), url: f.url, connections: 1, durationMs: 50, warmupMs: 0 })).rejects.toThrow(
      expect.objectContaining({ field: 'plan.info.requests' }),
    );
  });
});

describe('powerplant bench <entry> with a module exporting loadMix', () => {
  let f: FixtureServer;
  let dir: string;
  beforeAll(async () => {
    f = await startServer();
    dir = mkdtempSync(join(tmpdir(), 'pp-bench-mix-'));
  });
  afterAll(async () => {
    await stopServer(f);
    rmSync(dir, { recursive: true, force: true });
  });

  function io(): { io: Parameters<typeof benchCommand>[1] & object; out: () => string; err: () => string } {
    let out = '';
    let err = '';
    return { io: { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s), isTTY: false } }, out: () => out, err: () => err };
  }

  it('loads the mix from the entry, names it on stderr, and writes one histogram per endpoint', async () => {
    const c = io();
    const hgrm = join(dir, 'fixture.hgrm');
    const code = await benchCommand(['test/cli/fixtures/mix.ts', '--url', f.url, '--connections', '2', '--duration', '0.5', '--warmup', '0', '--hgrm', hgrm, '--json'], c.io);
    expect(code, c.err()).toBe(0);
    expect(c.err()).toContain('mix fixture (item 75%, echo 25%)');
    const json = JSON.parse(c.out()) as { mix: string; items: number; requests: number; summary: string };
    expect(json).toMatchObject({ mix: 'fixture', items: ITEMS, summary: `${ITEMS} items` });
    const item = parseHgrm(readFileSync(join(dir, 'fixture.item.hgrm'), 'utf8')).totalCount;
    const echo = parseHgrm(readFileSync(join(dir, 'fixture.echo.hgrm'), 'utf8')).totalCount;
    expect(item + echo).toBe(json.requests);
  });

  it('refuses no entry, an entry without loadMix, and a missing entry with exit code 2, naming them', async () => {
    const cases: [string[], RegExp][] = [
      [['--url', f.url], /powerplant bench: name the module whose `loadMix` to drive, e\.g\. `powerplant bench examples\/shop`/],
      [['test/cli/fixtures/greeter.ts', '--url', f.url], /powerplant bench: test\/cli\/fixtures\/greeter\.ts exports no `loadMix`/],
      [['test/cli/fixtures/nothing-here', '--url', f.url], /powerplant bench: no module at .*nothing-here/],
      [['test/cli/fixtures/mix.ts', 'extra'], /unexpected argument "extra"/],
    ];
    for (const [argv, re] of cases) {
      const c = io();
      expect(await benchCommand(argv, c.io), argv.join(' ')).toBe(2);
      expect(c.err()).toMatch(re);
    }
  });

  it('exits 1 naming the failure when the mix setup fails', async () => {
    const c = io();
    const code = await benchCommand(['test/cli/fixtures/mix.ts', '--url', `${f.url}nowhere/`, '--duration', '0.5', '--hgrm', join(dir, 'y.hgrm')], c.io);
    expect(code).toBe(1);
    expect(c.err()).toContain(`no fixture server at ${f.url}nowhere/: GET /config answered 404`);
  });
});
