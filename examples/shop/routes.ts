/**
 * The shop's HTTP routes (CONTRACT.md "Endpoints") for the gateway, type-checked: each route names
 * a registered action and its mapper returns that action's params type (routeFor, gateway/routes.ts).
 *
 * Authentication happens at the edge, statelessly, in the gateway's auth hook (`shopAuth`): it
 * reads `Authorization: Bearer <token>` and verifies it (one HMAC, see auth.ts). A route with
 * `auth: 'required'` gets the verified payload as its principal, and its mapper puts the caller's
 * id into the action's params — after the body's fields, so a body cannot act for someone else.
 * No token is a 401 from the gateway; a malformed, forged or expired one is the hook's 401; both
 * before any service is called; a non-admin on an admin route gets 403 (`authorize`).
 *
 * The mappers also turn query strings into numbers (`limit`) and refuse a body that is not a JSON
 * object; everything else (types, bounds, unknown fields) is the actions' TypeBox schemas' job,
 * which answer 400 naming the field (`params.items.0.qty`). So what comes from the client is typed
 * as what the action declares (bodyOf, int) without being checked here: the types make the route's
 * OWN fields (the caller's id, path ids) and the action's name a tsc error when wrong.
 */
import { createHash, randomUUID, type KeyObject } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { ppError, routeFor, type GatewayOptions, type GatewayRoute, type ParamsOf } from 'powerplant';
import { bearerToken, verifyToken, type TokenPayload } from './auth.js';
import { Order, Preferences, Product, Session, Stock, Transfer, User, Wallet } from './schema.js';
import { CategoryList, CategoryPage, SearchResult } from './services/catalog.js';
import { MessagePage } from './services/messages.js';
import { NotificationPage } from './services/notifier.js';
import { OrderPage } from './services/orders.js';

type Request = Parameters<NonNullable<GatewayRoute['params']>>[0];

/** Params a route sets itself (from the principal or the path), never from the body. */
type RouteSet = 'userId' | 'from' | 'id';

/**
 * The JSON body ({} when there is none) as the fields action N takes from the client; 400 naming
 * `body` for arrays and scalars. The type is the action's promise, not a check (see the header).
 */
function bodyOf<N extends string>(req: Request): Omit<ParamsOf<N>, RouteSet> {
  const b = req.body;
  if (b === undefined || b === null) return {} as Omit<ParamsOf<N>, RouteSet>;
  if (typeof b !== 'object' || Array.isArray(b)) throw ppError('PP_ERR_VALIDATION', { field: 'body', message: 'body: must be a JSON object' });
  return b as Omit<ParamsOf<N>, RouteSet>;
}

/**
 * A query-string integer as a number; anything else is passed on (typed as the number it should
 * be) for the schema to reject by name.
 */
function int(v: unknown): number {
  return (typeof v === 'string' && /^-?\d{1,9}$/.test(v) ? Number(v) : v) as number;
}

/** `{[name]?}` from the query string, as an integer for the schema to check. */
function optionalInt<K extends string>(req: Request, name: K): { [P in K]?: number } {
  const v = (req.query as Record<string, unknown>)[name];
  return (v === undefined ? {} : { [name]: int(v) }) as { [P in K]?: number };
}

/** `{limit?, cursor?}` from the query string (absent keys stay absent). */
function pageParams(req: Request): { limit?: number; cursor?: string } {
  const q = req.query as Record<string, unknown>;
  const out: { limit?: number; cursor?: string } = {};
  if (q.limit !== undefined) out.limit = int(q.limit);
  if (q.cursor !== undefined) out.cursor = q.cursor as string;
  return out;
}

const pathId = (req: Request): string => (req.params as { id: string }).id;

/** The Idempotency-Key header when it fits an action's key (1..64 characters), else undefined. */
function headerKey(req: Request): string | undefined {
  const h = req.headers['idempotency-key'];
  return typeof h === 'string' && h.length >= 1 && h.length <= 64 ? h : undefined;
}

/**
 * The gateway's auth hook: the verified token payload, undefined without an Authorization header,
 * PP_ERR_UNAUTHORIZED naming `headers.authorization` for a header that is not a valid session token.
 */
export function shopAuth(sessionKey: KeyObject): (req: Request) => TokenPayload | undefined {
  return (req) => {
    const header = req.headers.authorization;
    if (header === undefined) return undefined;
    const token = bearerToken(typeof header === 'string' ? header : undefined);
    if (token === undefined) throw ppError('PP_ERR_UNAUTHORIZED', { field: 'headers.authorization', message: 'a session token is required (Authorization: Bearer <token>)' });
    const v = verifyToken(sessionKey, token);
    if (!v.ok) throw ppError('PP_ERR_UNAUTHORIZED', { field: 'headers.authorization', message: `session token ${v.reason}` });
    return v.payload;
  };
}

export const isAdmin = (p: TokenPayload): boolean => p.role === 'admin';

const route = routeFor<TokenPayload>();

export function shopRoutes(): GatewayRoute<TokenPayload>[] {
  return [
    route({ method: 'POST', url: '/users', action: 'users.signUp', status: 201, resultSchema: User, params: (req) => bodyOf<'users.signUp'>(req) }),
    // A session token is never stored for replay: the header is not honoured here.
    route({ method: 'POST', url: '/sessions', action: 'users.signIn', status: 201, resultSchema: Session, idempotency: false, params: (req) => bodyOf<'users.signIn'>(req) }),
    route({ method: 'GET', url: '/me', action: 'users.me', auth: 'required', resultSchema: User, params: (_req, me) => ({ userId: me.uid }) }),
    route({ method: 'PATCH', url: '/me', action: 'users.update', auth: 'required', resultSchema: User, params: (req, me) => ({ ...bodyOf<'users.update'>(req), userId: me.uid }) }),
    route({ method: 'GET', url: '/me/preferences', action: 'users.getPreferences', auth: 'required', resultSchema: Preferences, params: (_req, me) => ({ userId: me.uid }) }),
    route({
      method: 'PUT', url: '/me/preferences', action: 'users.putPreferences', auth: 'required', resultSchema: Preferences,
      params: (req, me) => ({ ...bodyOf<'users.putPreferences'>(req), userId: me.uid }),
    }),

    route({ method: 'GET', url: '/categories', action: 'catalog.categories', resultSchema: CategoryList, params: () => ({}) }),
    route({ method: 'GET', url: '/categories/:id/products', action: 'catalog.categoryProducts', resultSchema: CategoryPage, params: (req) => ({ id: pathId(req), ...pageParams(req) }) }),
    // The hot path: default params ({ id } from the path), no mapper, no auth.
    route({ method: 'GET', url: '/products/:id', action: 'catalog.get', resultSchema: Product }),
    // Live statistics from the stream jobs (stats.ts).
    route({ method: 'GET', url: '/stats/categories', action: 'stats.categories', params: (req) => optionalInt(req, 'minutes') }),
    route({ method: 'GET', url: '/trending', action: 'stats.trending', params: (req) => optionalInt(req, 'limit') }),
    route({
      method: 'PUT', url: '/products/:id', action: 'catalog.put', auth: 'required', authorize: isAdmin, resultSchema: Product,
      params: (req) => ({ ...bodyOf<'catalog.put'>(req), id: pathId(req) }),
    }),
    route({
      method: 'GET', url: '/search', action: 'catalog.search', resultSchema: SearchResult,
      params: (req) => {
        const q = req.query as Record<string, unknown>;
        const out: ParamsOf<'catalog.search'> = { q: q.q as string };
        if (q.limit !== undefined) out.limit = int(q.limit);
        return out;
      },
    }),
    route({ method: 'GET', url: '/inventory/:sku', action: 'inventory.get', resultSchema: Stock }),

    route({
      method: 'POST', url: '/orders', action: 'orders.place', auth: 'required', status: 201, resultSchema: Order,
      params: (req, me) => {
        const body = bodyOf<'orders.place'>(req);
        // The body's key, else the Idempotency-Key header's (so a retry after a timeout reaches the
        // same checkout), else one per HTTP request (retries inside the platform stay idempotent).
        return { ...body, idempotencyKey: body.idempotencyKey ?? headerKey(req) ?? randomUUID(), userId: me.uid };
      },
    }),
    route({ method: 'GET', url: '/orders', action: 'orders.list', auth: 'required', resultSchema: OrderPage, params: (req, me) => ({ userId: me.uid, ...pageParams(req) }) }),
    route({ method: 'GET', url: '/orders/:id', action: 'orders.get', auth: 'required', resultSchema: Order, params: (req, me) => ({ userId: me.uid, orderId: pathId(req) }) }),

    route({
      method: 'POST', url: '/messages', action: 'messages.send', auth: 'required', status: 202, resultSchema: Type.Object({ messageId: Type.String() }),
      params: (req, me) => ({ ...bodyOf<'messages.send'>(req), from: me.uid }),
    }),
    route({ method: 'GET', url: '/messages', action: 'messages.inbox', auth: 'required', resultSchema: MessagePage, params: (req, me) => ({ userId: me.uid, ...pageParams(req) }) }),
    route({ method: 'GET', url: '/wallet', action: 'wallet.get', auth: 'required', resultSchema: Wallet, params: (_req, me) => ({ userId: me.uid }) }),
    route({
      method: 'POST', url: '/wallet/transfers', action: 'wallet.transfer', auth: 'required', status: 201, resultSchema: Transfer,
      params: (req, me) => {
        const body = bodyOf<'wallet.transfer'>(req);
        // The body's id, else one derived from the Idempotency-Key header, else one per HTTP request.
        const h = headerKey(req);
        return { ...body, transferId: body.transferId ?? (h === undefined ? randomUUID() : `k${createHash('sha256').update(h).digest('hex').slice(0, 32)}`), userId: me.uid };
      },
    }),
    route({ method: 'GET', url: '/notifications', action: 'notifier.list', auth: 'required', resultSchema: NotificationPage, params: (req, me) => ({ userId: me.uid, ...pageParams(req) }) }),
  ];
}

/**
 * The shop's part of the gateway's options: the auth hook, the routes, and who is an admin — who
 * reads /status whole (everyone else gets it with shard locations redacted: CONTRACT.md).
 */
export function shopGateway(sessionKey: KeyObject): Pick<GatewayOptions<TokenPayload>, 'auth' | 'routes' | 'admin' | 'statusAccess'> {
  return { auth: shopAuth(sessionKey), routes: shopRoutes(), admin: isAdmin, statusAccess: 'redacted' };
}
