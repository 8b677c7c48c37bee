/**
 * `powerplant status --token` against a gateway that shows /status whole to admins only: the token
 * (or $PP_STATUS_TOKEN) is sent as a bearer token; without it the CLI says what is missing.
 */
import { Type } from '@sinclair/typebox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statusCommand, type StatusIo } from '../../src/cli/status.js';
import { createGateway, type Gateway } from '../../src/gateway/index.js';
import { action, createNode, defineService, type ServiceNode } from '../../src/service/index.js';

const tclistatus = defineService({ name: 'tclistatus', actions: { ping: action({ params: Type.Object({}), handler: () => 'pong' }) } });
const LOCATION = 'sqlite:/srv/data/store/s0.db';

let node: ServiceNode;
let admin: Gateway;
let redacting: Gateway;
let adminUrl: string;
let redactingUrl: string;

beforeAll(async () => {
  node = createNode({ nodeId: 'cli-token', transport: `inproc://cli-token-${process.pid}`, logger: false, services: [tclistatus] });
  await node.start();
  const options = {
    routes: [],
    auth: (req: { headers: Record<string, unknown> }) => (req.headers.authorization === 'Bearer sesame' ? 'root' : undefined),
    admin: (p: string) => p === 'root',
    status: () => ({ partitions: { shards: [{ shard: 's0', engine: 'sqlite', location: LOCATION }], tables: [] } }),
  };
  admin = createGateway(node, { ...options, statusAccess: 'admin' });
  redacting = createGateway(node, options);
  adminUrl = await admin.listen(0);
  redactingUrl = await redacting.listen(0);
});

afterAll(async () => {
  await admin.close();
  await redacting.close();
  await node.stop();
});

function capture(): StatusIo & { text: () => string } {
  let text = '';
  return { out: (s) => (text += s), err: (s) => (text += s), text: () => text };
}

describe('powerplant status --token', () => {
  it('reads an admin-only status with the token, from the flag or from $PP_STATUS_TOKEN', async () => {
    const a = capture();
    expect(await statusCommand(['--url', adminUrl, '--token', 'sesame'], a, {}), a.text()).toBe(0);
    expect(a.text()).toMatch(/^s0\s+sqlite\s+sqlite:\/srv\/data\/store\/s0\.db$/m);
    const b = capture();
    expect(await statusCommand(['--url', adminUrl], b, { PP_STATUS_TOKEN: 'sesame' }), b.text()).toBe(0);
    expect(b.text()).toMatch(/^cli-token \(this one\)/m);
  });

  it('says an admin token is needed when the gateway refuses (and when it refused the one sent)', async () => {
    const a = capture();
    expect(await statusCommand(['--url', adminUrl], a, {})).toBe(1);
    expect(a.text()).toMatch(/answered HTTP 401 \(this gateway shows its status to admins only: pass an admin's token with --token or \$PP_STATUS_TOKEN\)/);
    const b = capture();
    expect(await statusCommand(['--url', adminUrl, '--token', 'wrong'], b, {})).toBe(1);
    expect(b.text()).toMatch(/HTTP 401 .*the one sent was refused/);
  });

  it('shows a redacting gateway\'s locations redacted without a token and whole with one', async () => {
    const anon = capture();
    expect(await statusCommand(['--url', redactingUrl], anon, {})).toBe(0);
    expect(anon.text()).toMatch(/^s0\s+sqlite\s+sqlite:…\/s0\.db$/m);
    expect(anon.text()).not.toContain('/srv/');
    const root = capture();
    expect(await statusCommand(['--url', redactingUrl, '--token', 'sesame'], root, {})).toBe(0);
    expect(root.text()).toContain(LOCATION);
  });
});
