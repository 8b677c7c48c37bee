/**
 * The HTTP server under Fastify, for the requests Node answers by itself before Fastify sees them,
 * with an empty body (so a client would get no catalogue error and no request id):
 *
 *  - an `Expect` header other than `100-continue`: Node answers 417 unless someone listens to
 *    'checkExpectation'; the gateway listens and answers 400 PP_ERR_VALIDATION naming
 *    `headers.expect` (the catalogue has no 417; RFC 9110 lets a server refuse an expectation it
 *    cannot meet with any 4xx);
 *  - an HTTP/1.1 request without `Host`: Node answers 400 itself when `requireHostHeader` is on
 *    (its default); the gateway turns that off and checks Host itself, answering 400
 *    PP_ERR_VALIDATION naming `headers.host`.
 *
 * The Host check is a scan of `rawHeaders` (the lazily built `headers` object would cost ~1 us per
 * request, see genReqId): clients send Host first, so it stops at the first name in practice.
 * Both answers close the connection (a body the client may still send is not read).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export type EdgeRefusal = 'host' | 'expect';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** Whether Node's flat [name, value, ...] header list has a Host header. */
function hasHost(raw: readonly string[]): boolean {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 4 && name.toLowerCase() === 'host') return true;
  }
  return false;
}

/**
 * A `serverFactory` for Fastify: Node's http server with the same timeouts Fastify would set on its
 * own, plus the two checks above; `refuse` writes the catalogue answer.
 */
export function edgeServerFactory(refuse: (req: IncomingMessage, res: ServerResponse, why: EdgeRefusal) => void): (handler: Handler, opts: Record<string, unknown>) => Server {
  return (handler, opts) => {
    const server = createServer({ requireHostHeader: false }, (req, res) => {
      if (req.httpVersionMinor === 1 && req.httpVersionMajor === 1 && !hasHost(req.rawHeaders)) refuse(req, res, 'host');
      else handler(req, res);
    });
    server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => refuse(req, res, 'expect'));
    // What Fastify does to a server it creates itself (lib/server.js, getServerInstance).
    if (typeof opts.keepAliveTimeout === 'number') server.keepAliveTimeout = opts.keepAliveTimeout;
    if (typeof opts.requestTimeout === 'number') server.requestTimeout = opts.requestTimeout;
    if (typeof opts.connectionTimeout === 'number') server.setTimeout(opts.connectionTimeout);
    if (typeof opts.maxRequestsPerSocket === 'number' && opts.maxRequestsPerSocket > 0) server.maxRequestsPerSocket = opts.maxRequestsPerSocket;
    return server;
  };
}
