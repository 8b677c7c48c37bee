/**
 * Type tests of the typed routes: tsc (npm run typecheck) checks the `@ts-expect-error` lines; each
 * must be an error or tsc fails with "Unused '@ts-expect-error' directive" (as
 * test/service/types.test.ts does for ctx.call). The runtime part only keeps vitest happy.
 */
import { describe, expect, it } from 'vitest';
import { route, routeFor, type GatewayRoute } from '../../src/gateway/index.js';
import type { ServiceNode } from '../../src/service/index.js';
import { createGateway } from '../../src/gateway/index.js';
import '../service/fixtures.js';

interface Session {
  uid: string;
  admin: boolean;
}

function typeChecks(node: ServiceNode): void {
  const ok: GatewayRoute[] = [
    route({ method: 'GET', url: '/products/:id', action: 'tcatalog.get' }),
    route({ method: 'GET', url: '/products/:id', action: 'tcatalog.get', params: (req) => ({ id: (req.params as { id: string }).id }) }),
    route({ method: 'POST', url: '/quotes', action: 'torders.quote', params: () => ({ productId: 'p1', qty: 2 }) }),
    route({ method: 'GET', url: '/count', action: 'tcatalog.count', params: () => ({}) }),
  ];

  // @ts-expect-error -- unknown action of a known service
  route({ method: 'GET', url: '/x', action: 'tcatalog.delete' });
  // @ts-expect-error -- unknown service
  route({ method: 'GET', url: '/x', action: 'nosuch.get' });
  // @ts-expect-error -- not service.action at all
  route({ method: 'GET', url: '/x', action: 'tcatalog' });
  // @ts-expect-error -- wrong param type: id is a string
  route({ method: 'GET', url: '/x', action: 'tcatalog.get', params: () => ({ id: 42 }) });
  // @ts-expect-error -- missing required param
  route({ method: 'POST', url: '/x', action: 'torders.quote', params: () => ({ productId: 'p1' }) });
  // @ts-expect-error -- misnamed param (excess property)
  route({ method: 'GET', url: '/x', action: 'tcatalog.get', params: () => ({ id: 'p1', colour: 'red' }) });
  // @ts-expect-error -- qty must be a number
  route({ method: 'POST', url: '/x', action: 'torders.quote', params: () => ({ productId: 'p1', qty: '2' }) });
  // @ts-expect-error -- not an HTTP method the gateway routes
  route({ method: 'TRACE', url: '/x', action: 'tcatalog.get' });

  // The principal's type follows `auth`: there with 'required', maybe undefined with 'optional'.
  const sroute = routeFor<Session>();
  const authed = [
    sroute({ method: 'GET', url: '/mine', action: 'tcatalog.get', auth: 'required', params: (_req, s) => ({ id: s.uid }) }),
    sroute({ method: 'GET', url: '/maybe', action: 'tcatalog.get', auth: 'optional', params: (_req, s) => ({ id: s?.uid ?? 'p1' }) }),
    sroute({ method: 'PUT', url: '/admin', action: 'tcatalog.get', auth: 'required', authorize: (s) => s.admin, params: (_req, s) => ({ id: s.uid }) }),
  ];
  // @ts-expect-error -- with 'optional' the principal may be undefined
  sroute({ method: 'GET', url: '/maybe', action: 'tcatalog.get', auth: 'optional', params: (_req, s) => ({ id: s.uid }) });
  // @ts-expect-error -- the principal's fields are typed: uid is a string, not a number
  sroute({ method: 'GET', url: '/mine', action: 'tcatalog.get', auth: 'required', params: (_req, s) => ({ id: s.uid * 2 }) });
  // @ts-expect-error -- a route without auth gets no principal
  sroute({ method: 'GET', url: '/anon', action: 'tcatalog.get', params: (_req, s) => ({ id: s.uid }) });
  // @ts-expect-error -- authorize needs auth
  sroute({ method: 'GET', url: '/anon', action: 'tcatalog.get', authorize: () => true });
  // @ts-expect-error -- auth is 'required' or 'optional'
  sroute({ method: 'GET', url: '/anon', action: 'tcatalog.get', auth: 'yes' });

  // The gateway's principal type comes from its hook; routes for another principal do not fit.
  createGateway(node, { auth: (): Session | undefined => undefined, routes: [...ok, ...authed] });
  const other = routeFor<{ apiKey: string }>()({ method: 'GET', url: '/k', action: 'tcatalog.get', auth: 'required', params: (_req, k) => ({ id: k.apiKey }) });
  // @ts-expect-error -- a route for principals with an apiKey on a gateway whose principals are Sessions
  createGateway(node, { auth: (): Session | undefined => undefined, routes: [other] });

  // The dynamic form (plain objects) takes any name, by design: routes loaded at run time.
  const dynamic: GatewayRoute[] = [{ method: 'GET', url: '/any', action: 'anything.at-all', params: () => ({ whatever: 1 }) }];
  void dynamic;
}

describe('gateway route types', () => {
  it('is checked by tsc (see the @ts-expect-error lines)', () => {
    expect(typeof typeChecks).toBe('function');
  });
});
