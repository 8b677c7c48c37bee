import { createServer, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseArgs, UsageError } from '../../src/cli/args.js';
import { parseSimulateArgs, run } from '../../src/cli/main.js';
import { renderStatus } from '../../src/cli/status.js';

describe('powerplant CLI (in process)', () => {
  afterEach(() => vi.restoreAllMocks());

  function capture(): { out: () => string; err: () => string } {
    let out = '';
    let err = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out += String(chunk);
      return true;
    });
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      err += String(chunk);
      return true;
    });
    return { out: () => out, err: () => err };
  }

  it('parses simulate options and rejects bad ones with a message naming the flag', () => {
    expect(parseSimulateArgs([])).toEqual({ keys: 1_000_000, servers: 1_000, requests: 100_000 });
    expect(parseSimulateArgs(['--keys', '5000', '--servers=20'])).toMatchObject({ keys: 5000, servers: 20 });
    expect(() => parseSimulateArgs(['--keys', '-3'])).toThrow(/--keys must be an integer/);
    expect(() => parseSimulateArgs(['--keys'])).toThrow(/--keys must be an integer.*got nothing/);
    expect(() => parseSimulateArgs(['--shards', '3'])).toThrow(/unknown option --shards/);
    expect(() => parseSimulateArgs(['extra'])).toThrow(UsageError);
  });

  it('parseArgs: booleans, strings, positionals, and errors naming the option', () => {
    const spec = { json: { kind: 'bool' }, url: { kind: 'string' }, port: { kind: 'int', min: 0, max: 65535 } } as const;
    expect(parseArgs('x', ['a.ts', '--json', '--url', 'http://h:1', '--port=0'], spec, 1)).toEqual({
      flags: { json: true, url: 'http://h:1', port: 0 },
      positional: ['a.ts'],
    });
    expect(() => parseArgs('x', ['--url'], spec)).toThrow(/powerplant x: --url needs a value/);
    expect(() => parseArgs('x', ['--json=1'], spec)).toThrow(/--json takes no value/);
    expect(() => parseArgs('x', ['--port', '70000'], spec)).toThrow(/--port must be an integer from 0 to 65535 \(got 70000\)/);
    expect(() => parseArgs('x', ['-v'], spec)).toThrow(/unknown option -v/);
    expect(() => parseArgs('x', ['a', 'b'], spec, 1)).toThrow(/unexpected argument "b"/);
    expect(() => parseArgs('x', ['--constructor', '1'], spec)).toThrow(/unknown option --constructor/);
  });

  it('simulate prints both simulation tables with every strategy', async () => {
    const io = capture();
    const code = await run(['simulate', '--keys', '20000', '--servers', '20', '--requests', '2000']);
    expect(code).toBe(0);
    const out = io.out();
    for (const s of ['jump', 'rendezvous', 'ring', 'maglev', 'bounded']) expect(out).toMatch(new RegExp(`^${s}\\s+10\\s`, 'm'));
    for (const s of ['random', 'round-robin', 'weighted-round-robin', 'least-outstanding', 'p2c', 'consistent-hash']) {
      expect(out).toMatch(new RegExp(`^${s}\\s+\\d`, 'm'));
    }
  });

  it('bad input exits 2 with a clear message naming it, never a stack trace', async () => {
    const io = capture();
    expect(await run(['simulate', '--keys', 'many'])).toBe(2);
    expect(io.err()).toMatch(/^powerplant simulate: --keys must be an integer/);
    expect(await run(['launch'])).toBe(2);
    expect(io.err()).toMatch(/unknown command "launch"/);
    expect(await run(['status', '--colour'])).toBe(2);
    expect(io.err()).toMatch(/powerplant status: unknown option --colour/);
    expect(await run(['start', '--port', 'http'])).toBe(2);
    expect(io.err()).toMatch(/powerplant start: --port must be an integer from 0 to 65535 \(got http\)/);
    expect(await run(['start', 'a.ts', 'b.ts'])).toBe(2);
    expect(io.err()).toMatch(/powerplant start: unexpected argument "b.ts"/);
    expect(io.err()).not.toMatch(/\n\s+at /);
    expect(await run([])).toBe(2);
  });

  it('help lists every command', async () => {
    const io = capture();
    expect(await run(['help'])).toBe(0);
    for (const c of ['start', 'status', 'bench', 'simulate', 'help']) expect(io.out()).toMatch(new RegExp(`^  ${c}\\s`, 'm'));
    expect(await run(['status', '--help'])).toBe(0);
    expect(io.out()).toMatch(/--json/);
  });

  it('status says clearly when nothing answers, within its timeout', async () => {
    // A port nothing listens on: bind one, note it, close it.
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const { port } = srv.address() as AddressInfo;
    await new Promise<void>((r) => srv.close(() => r()));
    const io = capture();
    expect(await run(['status', '--url', `http://127.0.0.1:${port}`, '--timeout', '2000'])).toBe(1);
    expect(io.err()).toContain(`powerplant status: nothing answers at http://127.0.0.1:${port}/status (ECONNREFUSED)`);
    expect(await run(['status', '--url', 'not a url'])).toBe(2);
  });

  it('renders a status document as tables, and tolerates missing fields', () => {
    const text = renderStatus(
      {
        node: { nodeId: 'n1', namespace: 'shop', instanceId: 'i1', uptimeMs: 61_500, live: true, ready: true, state: 'running', registryNodes: 2, inFlight: 3 },
        nodes: [
          { nodeId: 'n1', instanceId: 'i1', local: true, status: 'alive', services: [{ name: 'users', version: 1 }] },
          { nodeId: 'n2', instanceId: 'i2', local: false, status: 'suspect', services: [{ name: 'users', version: 1 }] },
        ],
        services: [
          {
            name: 'users', version: 1, instances: ['n1', 'n2'],
            actions: [{ name: 'users.get', endpoints: [{ nodeId: 'n1', inFlight: 2, breaker: 'closed' }, { nodeId: 'n2', inFlight: 1, breaker: 'open' }] }],
          },
        ],
        partitions: {
          shards: [{ shard: 's0', engine: 'sqlite', location: 'sqlite:/d/s0' }, { shard: 's1', engine: 'postgres', location: 'postgres://h/db?schema=x_1' }],
          tables: [
            {
              name: 'orders', kind: 'table', primaryKey: ['userId', 'orderId'], partitionKey: ['userId'], indexes: { recent: ['userId', 'createdAt'] },
              partitioning: { kind: 'hash', epoch: 1, slotCount: 16384, owned: { s0: 8190, s1: 8194 } },
            },
            { name: 'meta', kind: 'kv', primaryKey: ['k'], partitionKey: ['k'], indexes: {}, partitioning: { kind: 'range', shards: ['s0'] } },
          ],
        },
      },
      'http://x',
    );
    expect(text).toMatch(/^n1\s+shop\s+running\s+yes\s+yes\s+1 min 1 s\s+3\s+2$/m);
    expect(text).toMatch(/^n2\s+i2\s+-\s+suspect\s+users@1$/m);
    expect(text).toMatch(/^users\s+1\s+2\s+n1 n2\s+1\s+3\s+closed 1, open 1$/m);
    expect(text).toMatch(/^users\.get\s+2\s+3\s+closed 1, open 1$/m);
    expect(text).toMatch(/partitions: 2 shards, 2 tables/);
    expect(text).toMatch(/^s0\s+sqlite\s+sqlite:\/d\/s0$/m);
    expect(text).toMatch(/^s1\s+postgres\s+postgres:\/\/h\/db\?schema=x_1$/m);
    expect(text).toMatch(/^orders\s+table\s+userId, orderId\s+userId\s+hash: 16384 slots, epoch 1 \(s0 8190, s1 8194\)\s+recent\(userId, createdAt\)$/m);
    expect(text).toMatch(/^meta\s+kv\s+k\s+k\s+range over s0\s+-$/m);
    const withStreams = renderStatus(
      { streams: [{ job: 'shop_sales', topic: 'shop-sales', partitions: [{ partition: 0, lagRecords: 3 }, { partition: 2, lagRecords: 4 }], watermarkDelayMs: 65_000, counters: { recordsIn: 10, results: 2, late: 1, dead: 0, checkpoints: 5 } }] },
      'http://x',
    );
    expect(withStreams).toMatch(/streams \(1\)/);
    expect(withStreams).toMatch(/^shop_sales\s+shop-sales\s+0 2\s+7\s+65 s\s+10\s+2\s+1\s+0\s+5$/m);
    // An older node that reports less still gets a readable answer.
    expect(renderStatus({}, 'http://x')).toMatch(/nodes \(0\)\n {2}\(none reported\)/);
  });
});
