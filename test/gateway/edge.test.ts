/**
 * Requests Node would answer by itself with an empty body, over a raw socket: an `Expect` other
 * than 100-continue (Node: 417, no body) and an HTTP/1.1 request without `Host` (Node: 400, no
 * body) get the catalogue's JSON body with a request id instead.
 */
import { connect } from 'node:net';
import { Type } from '@sinclair/typebox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGateway, type Gateway } from '../../src/gateway/index.js';
import type { ServiceNode } from '../../src/service/index.js';
import { action, createNode, defineService } from '../service/imports.js';

const tgwedge = defineService({ name: 'tgwedge', actions: { echo: action({ params: Type.Object({ id: Type.String() }), handler: (_ctx, p) => p }) } });

let node: ServiceNode;
let gw: Gateway;
let port: number;

beforeAll(async () => {
  node = createNode({ nodeId: 'gwedge', transport: `inproc://gwedge-${process.pid}`, logger: false, services: [tgwedge] });
  await node.start();
  gw = createGateway(node, { routes: [{ method: 'GET', url: '/x/:id', action: 'tgwedge.echo' }, { method: 'POST', url: '/x/:id', action: 'tgwedge.echo' }] });
  port = Number(new URL(await gw.listen(0)).port);
});

afterAll(async () => {
  await gw.close();
  await node.stop();
});

interface RawAnswer {
  head: string;
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Writes `text` on a fresh connection and reads until the server closes it (bounded). */
function raw(text: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let out = '';
    const timer = setTimeout(() => s.destroy(new Error(`no close within 5 s; got ${JSON.stringify(out)}`)), 5_000);
    s.on('data', (d: Buffer) => (out += d.toString()));
    s.on('error', reject);
    s.on('close', () => {
      clearTimeout(timer);
      // Skip an interim 100 Continue if there is one.
      const final = out.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '');
      const [head = '', ...rest] = final.split('\r\n\r\n');
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
      resolve({ head, status: Number(statusLine.split(' ')[1]), headers, body: rest.join('\r\n\r\n') });
    });
    s.write(text);
  });
}

describe('gateway edge answers', () => {
  it('answers an unknown Expect with the catalogue\'s 400 naming headers.expect, not Node\'s empty 417', async () => {
    const r = await raw('POST /x/1 HTTP/1.1\r\nHost: a\r\nExpect: something-else\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}');
    expect(r.status).toBe(400);
    expect(r.headers['content-type']).toContain('application/json');
    const body = JSON.parse(r.body) as { error: { code: string; field: string; requestId: string } };
    expect(body.error).toMatchObject({ code: 'PP_ERR_VALIDATION', field: 'headers.expect' });
    expect(body.error.requestId).toBe(r.headers['x-request-id']);
    expect(r.headers.connection).toBe('close');
  });

  it('answers an HTTP/1.1 request without Host with the catalogue\'s 400 naming headers.host, keeping a sane client request id', async () => {
    const r = await raw('GET /x/1 HTTP/1.1\r\nx-request-id: edge-1\r\nConnection: close\r\n\r\n');
    expect(r.status).toBe(400);
    const body = JSON.parse(r.body) as { error: { code: string; field: string; requestId: string } };
    expect(body.error).toEqual({ code: 'PP_ERR_VALIDATION', field: 'headers.host', message: 'headers.host: an HTTP/1.1 request needs a Host header', requestId: 'edge-1' });
    expect(r.headers['x-request-id']).toBe('edge-1');
  });

  it('still serves 100-continue, HTTP/1.0 without Host, and Host in any letter case', async () => {
    const cont = await raw('POST /x/1 HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}');
    expect([cont.status, JSON.parse(cont.body)]).toEqual([200, { id: '1' }]);
    const old = await raw('GET /x/2 HTTP/1.0\r\n\r\n');
    expect([old.status, JSON.parse(old.body)]).toEqual([200, { id: '2' }]);
    const lower = await raw('GET /x/3 HTTP/1.1\r\nhOsT: a\r\nConnection: close\r\n\r\n');
    expect([lower.status, JSON.parse(lower.body)]).toEqual([200, { id: '3' }]);
  });

  it('counts the refusals in the metrics', async () => {
    const m = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(m).toMatch(/pp_http_requests_total\{route="\(framework\)",status="400"\} [2-9]/);
  });
});
