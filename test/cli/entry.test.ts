/**
 * What `powerplant start <entry>` loads (src/cli/app.ts, entry.ts), in process: how an entry is
 * resolved (file, directory with package.json `main`, directory with index.ts), the `start(ctx)`
 * contract (the context it is handed, the `listening on` line, the banner or the default one), and
 * the entries it refuses, each a UsageError naming the entry.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/cli/args.js';
import { resolveEntry } from '../../src/cli/entry.js';
import { startServices, type Started } from '../../src/cli/start.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const fixture = (p: string): string => resolve(root, 'test/cli/fixtures', p);

describe('resolveEntry', () => {
  it('takes a file as it is, a directory by its package.json main, else its index.ts', () => {
    expect(resolveEntry('start', 'test/cli/fixtures/greeter.ts', root)).toBe(fixture('greeter.ts'));
    expect(resolveEntry('start', 'test/cli/fixtures/app', root)).toBe(fixture('app/server.ts'));
    expect(resolveEntry('start', 'examples/shop', root)).toBe(resolve(root, 'examples/shop/index.ts'));
    expect(resolveEntry('start', fixture('app'))).toBe(fixture('app/server.ts'));
  });

  it('refuses a missing path and a directory without a module, naming them', () => {
    expect(() => resolveEntry('start', 'test/cli/fixtures/missing.ts', root)).toThrow(UsageError);
    expect(() => resolveEntry('start', 'test/cli/fixtures/missing.ts', root)).toThrow(`powerplant start: no module at ${fixture('missing.ts')}`);
    expect(() => resolveEntry('bench', 'test/cli/fixtures/no-module', root)).toThrow(
      `powerplant bench: no module in the directory ${fixture('no-module')} (looked for index.ts, index.js)`,
    );
  });
});

describe('powerplant start <entry> (in process)', () => {
  let running: Started | undefined;
  afterEach(async () => {
    await running?.stop();
    running = undefined;
  });

  function start(argv: string[], env: NodeJS.ProcessEnv = {}): { started: Promise<Started>; out: () => string } {
    let out = '';
    const started = startServices(argv, { out: (s) => (out += s) }, env).then((s) => (running = s));
    return { started, out: () => out };
  }

  it('runs a start(ctx) module from a directory entry: the context it is handed, then `listening on` and its banner', async () => {
    const r = start(['test/cli/fixtures/app', '--port', '0'], { FIXTURE_GREETING: 'hi', PP_HOST: '127.0.0.1' });
    const app = await r.started;
    expect(app.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(r.out()).toBe(`listening on ${app.url}\n\nfixture app (transport inproc://)\n\nCtrl-C to stop.\n`);
    const seen = await (await fetch(app.url)).json();
    expect(seen).toEqual({ entry: 'test/cli/fixtures/app', port: 0, host: '127.0.0.1', nats: null, transport: 'inproc://', greeting: 'hi' });
  });

  it('hands --nats (over PP_NATS) to the module as its transport, and prints a default banner when it has none', async () => {
    const r = start(['test/cli/fixtures/app', '--port', '0', '--nats', 'nats://127.0.0.1:4222'], { PP_NATS: 'nats://elsewhere:4222', FIXTURE_NO_BANNER: '1' });
    const app = await r.started;
    expect(r.out()).toBe(`listening on ${app.url}\n\ntest/cli/fixtures/app is running.\n\nCtrl-C to stop.\n`);
    expect(await (await fetch(app.url)).json()).toMatchObject({ nats: 'nats://127.0.0.1:4222', transport: 'nats://127.0.0.1:4222' });
  });

  it('reports a RangeError from start(ctx) as a command-line error naming the entry and the variable', async () => {
    const r = start(['test/cli/fixtures/app', '--port', '0'], { FIXTURE_BAD: 'yes' });
    await expect(r.started).rejects.toThrow(UsageError);
    await expect(r.started).rejects.toThrow("powerplant start: test/cli/fixtures/app: FIXTURE_BAD must be unset (got 'yes')");
    expect(r.out()).toBe('');
  });

  it('refuses no entry (saying to name one), a module that is neither kind, and a directory without a module', async () => {
    await expect(start([]).started).rejects.toThrow(/powerplant start: name the module to start, e\.g\. `powerplant start examples\/shop`/);
    await expect(start(['--port', '0']).started).rejects.toThrow(UsageError);
    await expect(start(['test/cli/fixtures/neither.ts']).started).rejects.toThrow(
      'powerplant start: test/cli/fixtures/neither.ts exports neither `start(ctx)` (an application) nor `services` (defineService results)',
    );
    await expect(start(['test/cli/fixtures/no-module']).started).rejects.toThrow(/no module in the directory .*no-module/);
  });
});
