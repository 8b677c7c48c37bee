/**
 * What a failing request tells the client and the log, over HTTP: a 5xx body carries the
 * catalogue's message for its code (and the request id), never the text of the error (a driver's
 * or an engine's message, a path, a URL); the detail goes to the log, in ONE JSON line whose `msg`
 * appears once (a second `msg` key made JSON parsers keep the wrong one). A 4xx message is ours
 * and names the field: it goes to the client as it is.
 */
import { Writable } from 'node:stream';
import { Type } from '@sinclair/typebox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERRORS } from '../../src/errors/index.js';
import { createGateway, type Gateway } from '../../src/gateway/index.js';
import { createLogger } from '../../src/observe/index.js';
import type { ServiceNode } from '../../src/service/index.js';
import { action, createNode, defineService, ppError } from '../service/imports.js';

const PG_TEXT = 'invalid byte sequence for encoding "UTF8": 0x00';
const CONN_TEXT = 'connect ECONNREFUSED 10.0.3.7:5432 (postgres://app:s3cret@10.0.3.7/shop)';
const PATH_TEXT = "SQLITE_CANTOPEN: unable to open database file '/srv/shop/store/s0.db'";

const tgwfail = defineService({
  name: 'tgwfail',
  actions: {
    internal: action({
      params: Type.Object({}),
      handler: () => {
        throw ppError('PP_ERR_INTERNAL', { message: `query failed: ${PG_TEXT}`, cause: new Error(PG_TEXT) });
      },
    }),
    unavailable: action({
      params: Type.Object({}),
      handler: async () => {
        throw ppError('PP_ERR_UNAVAILABLE', { message: CONN_TEXT, retryAfterMs: 1_500, cause: new Error(CONN_TEXT) });
      },
    }),
    corrupt: action({ params: Type.Object({}), handler: () => { throw ppError('PP_ERR_CORRUPT', { message: PATH_TEXT, field: 'params.x' }); } }),
    rejected: action({ params: Type.Object({}), handler: () => { throw ppError('PP_ERR_VALIDATION', { field: 'params.cursor', message: 'params.cursor: not a cursor this server wrote' }); } }),
  },
});

const lines: string[] = [];
const sink = new Writable({
  write(chunk: Buffer, _enc, done) {
    lines.push(...chunk.toString().split('\n').filter((l) => l !== ''));
    done();
  },
});

let node: ServiceNode;
let gw: Gateway;
let url: string;

beforeAll(async () => {
  node = createNode({ nodeId: 'gwe', transport: `inproc://gwe-${process.pid}`, logger: false, services: [tgwfail] });
  await node.start();
  gw = createGateway(node, {
    logger: createLogger({ level: 'debug', destination: sink }),
    routes: [
      { method: 'GET', url: '/internal', action: 'tgwfail.internal' },
      { method: 'GET', url: '/unavailable', action: 'tgwfail.unavailable' },
      { method: 'GET', url: '/corrupt', action: 'tgwfail.corrupt' },
      { method: 'GET', url: '/rejected', action: 'tgwfail.rejected' },
      {
        method: 'GET', url: '/mapper-bug', action: 'tgwfail.internal',
        params: () => {
          throw ppError('PP_ERR_INTERNAL', { message: `mapper: ${PATH_TEXT}` });
        },
      },
    ],
    status: () => {
      throw new Error(`status: ${CONN_TEXT}`);
    },
  });
  url = await gw.listen(0);
});

afterAll(async () => {
  await gw.close();
  await node.stop();
});

/** The log lines of one request, parsed (and the raw text, to count keys). */
function logOf(requestId: string): { raw: string; line: Record<string, unknown> }[] {
  return lines.filter((l) => l.includes(`"reqId":"${requestId}"`)).map((raw) => ({ raw, line: JSON.parse(raw) as Record<string, unknown> }));
}

async function call(path: string): Promise<{ status: number; text: string; body: { error: { code: string; message: string; requestId: string; field?: string; retryAfterMs?: number } } }> {
  const res = await fetch(`${url}${path}`);
  const text = await res.text();
  return { status: res.status, text, body: JSON.parse(text) as never };
}

describe('gateway error answers', () => {
  it.each([
    ['/internal', 500, 'PP_ERR_INTERNAL', PG_TEXT],
    ['/unavailable', 503, 'PP_ERR_UNAVAILABLE', CONN_TEXT],
    ['/corrupt', 500, 'PP_ERR_CORRUPT', PATH_TEXT],
    ['/mapper-bug', 500, 'PP_ERR_INTERNAL', PATH_TEXT],
    ['/status', 503, 'PP_ERR_UNAVAILABLE', CONN_TEXT],
  ] as const)('%s: a %i body says only the catalogue message; the detail is in one log line with one msg', async (path, status, code, detail) => {
    const r = await call(path);
    expect(r.status).toBe(status);
    expect(r.body.error).toMatchObject({ code, message: ERRORS[code].message });
    expect(r.body.error.field).toBeUndefined();
    for (const leak of ['UTF8', 'ECONNREFUSED', '10.0.3.7', 's3cret', '/srv/', 'SQLITE']) expect(r.text).not.toContain(leak);
    const logged = logOf(r.body.error.requestId);
    expect(logged).toHaveLength(1);
    const { raw, line } = logged[0]!;
    expect(raw.match(/"msg":/g)).toHaveLength(1);
    expect(line).toMatchObject({ level: 50, msg: 'request failed', code, status });
    expect((line.err as { message: string }).message).toContain(detail);
  });

  it('keeps Retry-After and retryAfterMs on a 503 whose message it hides', async () => {
    const res = await fetch(`${url}/unavailable`);
    expect(res.headers.get('retry-after')).toBe('2');
    expect(((await res.json()) as { error: { retryAfterMs: number } }).error.retryAfterMs).toBe(1_500);
  });

  it('sends a 4xx message as it is (ours: it names the field), logged at debug without the error', async () => {
    const r = await call('/rejected');
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'PP_ERR_VALIDATION', field: 'params.cursor', message: 'params.cursor: not a cursor this server wrote' });
    const logged = logOf(r.body.error.requestId);
    expect(logged).toHaveLength(1);
    expect(logged[0]!.line).toMatchObject({ level: 20, msg: 'request rejected', code: 'PP_ERR_VALIDATION', field: 'params.cursor' });
  });
});
