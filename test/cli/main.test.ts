import { afterEach, describe, expect, it, vi } from 'vitest';
import { main, parseStartArgs } from '../../src/cli/main.js';

describe('powerplant CLI', () => {
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

  it('parses start options and rejects bad ones with a message naming the flag', () => {
    expect(parseStartArgs([])).toEqual({ keys: 1_000_000, servers: 1_000, requests: 100_000 });
    expect(parseStartArgs(['--keys', '5000', '--servers', '20'])).toMatchObject({ keys: 5000, servers: 20 });
    expect(() => parseStartArgs(['--keys', '-3'])).toThrow(/--keys must be an integer/);
    expect(() => parseStartArgs(['--keys'])).toThrow(/--keys must be an integer.*got nothing/);
    expect(() => parseStartArgs(['--shards', '3'])).toThrow(/unknown option --shards/);
  });

  it('start prints both simulation tables with every strategy', () => {
    const io = capture();
    const code = main(['start', '--keys', '20000', '--servers', '20', '--requests', '2000']);
    expect(code).toBe(0);
    const out = io.out();
    for (const s of ['jump', 'rendezvous', 'ring', 'maglev', 'bounded']) expect(out).toMatch(new RegExp(`^${s}\\s+10\\s`, 'm'));
    for (const s of ['random', 'round-robin', 'weighted-round-robin', 'least-outstanding', 'p2c', 'consistent-hash']) {
      expect(out).toMatch(new RegExp(`^${s}\\s+\\d`, 'm'));
    }
  });

  it('bad input exits 2 with a clear message, never a stack trace', () => {
    const io = capture();
    expect(main(['start', '--keys', 'many'])).toBe(2);
    expect(io.err()).toMatch(/^powerplant: --keys must be an integer/);
    expect(main(['launch'])).toBe(2);
    expect(io.err()).toMatch(/unknown command "launch"/);
  });
});
