/**
 * The shop's HTTP routes (CONTRACT.md "Endpoints") for the gateway.
 *
 * Authentication happens at the edge, statelessly: each protected route's `params` mapper reads
 * `Authorization: Bearer <token>`, verifies it (one HMAC, see auth.ts) and puts the caller's id
 * into the action's params — after the body's fields, so a body cannot act for someone else. A
 * missing, malformed, forged or expired token throws PP_ERR_UNAUTHORIZED there, which the gateway
 * answers as 401 before any service is called; a non-admin on an admin route gets 403.
 *
 * The mappers also turn query strings into numbers (`limit`) and refuse a body that is not a JSON
 * object; everything else (types, bounds, unknown fields) is the actions' TypeBox schemas' job,
 * which answer 400 naming the field (`params.items.0.qty`).
 */
import { randomUUID, type KeyObject } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { ppError, type GatewayRoute } from 'powerplant';
import { bearerToken, verifyToken, type TokenPayload } from './auth.js';
import { Order, Preferences, Product, Session, Stock, User } from './schema.js';
import { CategoryList, CategoryPage, SearchResult } from './services/catalog.js';
import { MessagePage } from './services/messages.js';
import { NotificationPage } from './services/notifier.js';
import { OrderPage } from './services/orders.js';

type Request = Parameters<NonNullable<GatewayRoute['params']>>[0];

/** The JSON body as an object ({} when there is none); 400 naming `body` for arrays and scalars. */
function bodyOf(req: Request): Record<string, unknown> {
  const b = req.body;
  if (b === undefined || b === null) return {};
  if (typeof b !== 'object' || Array.isArray(b)) throw ppError('PP_ERR_VALIDATION', { field: 'body', message: 'body: must be a JSON object' });
  return b as Record<string, unknown>;
}

/** A query-string integer as a number; anything else is passed on for the schema to reject by name. */
function int(v: unknown): unknown {
  return typeof v === 'string' && /^-?\d{1,9}$/.test(v) ? Number(v) : v;
}

/** `{limit?, cursor?}` from the query string (absent keys stay absent). */
function pageParams(req: Request, into: Record<string, unknown>): Record<string, unknown> {
  const q = req.query as Record<string, unknown>;
  if (q.limit !== undefined) into.limit = int(q.limit);
  if (q.cursor !== undefined) into.cursor = q.cursor;
  return into;
}

export function shopRoutes(sessionKey: KeyObject): GatewayRoute[] {
  const authenticate = (req: Request): TokenPayload => {
    const header = req.headers.authorization;
    const token = bearerToken(typeof header === 'string' ? header : undefined);
    if (token === undefined) throw ppError('PP_ERR_UNAUTHORIZED', { field: 'headers.authorization', message: 'a session token is required (Authorization: Bearer <token>)' });
    const v = verifyToken(sessionKey, token);
    if (!v.ok) throw ppError('PP_ERR_UNAUTHORIZED', { field: 'headers.authorization', message: `session token ${v.reason}` });
    return v.payload;
  };
  const uid = (req: Request): string => authenticate(req).uid;

  return [
    { method: 'POST', url: '/users', action: 'users.signUp', status: 201, resultSchema: User, params: (req) => bodyOf(req) },
    { method: 'POST', url: '/sessions', action: 'users.signIn', status: 201, resultSchema: Session, params: (req) => bodyOf(req) },
    { method: 'GET', url: '/me', action: 'users.me', resultSchema: User, params: (req) => ({ userId: uid(req) }) },
    { method: 'PATCH', url: '/me', action: 'users.update', resultSchema: User, params: (req) => { const userId = uid(req); return { ...bodyOf(req), userId }; } },
    { method: 'GET', url: '/me/preferences', action: 'users.getPreferences', resultSchema: Preferences, params: (req) => ({ userId: uid(req) }) },
    { method: 'PUT', url: '/me/preferences', action: 'users.putPreferences', resultSchema: Preferences, params: (req) => { const userId = uid(req); return { ...bodyOf(req), userId }; } },

    { method: 'GET', url: '/categories', action: 'catalog.categories', resultSchema: CategoryList, params: () => ({}) },
    {
      method: 'GET', url: '/categories/:id/products', action: 'catalog.categoryProducts', resultSchema: CategoryPage,
      params: (req) => pageParams(req, { id: (req.params as { id: string }).id }),
    },
    // The hot path: default params ({ id } from the path), no mapper.
    { method: 'GET', url: '/products/:id', action: 'catalog.get', resultSchema: Product },
    {
      method: 'PUT', url: '/products/:id', action: 'catalog.put', resultSchema: Product,
      params: (req) => {
        if (authenticate(req).role !== 'admin') throw ppError('PP_ERR_FORBIDDEN', { message: 'only an admin may change products' });
        return { ...bodyOf(req), id: (req.params as { id: string }).id };
      },
    },
    {
      method: 'GET', url: '/search', action: 'catalog.search', resultSchema: SearchResult,
      params: (req) => {
        const q = req.query as Record<string, unknown>;
        const out: Record<string, unknown> = { q: q.q };
        if (q.limit !== undefined) out.limit = int(q.limit);
        return out;
      },
    },
    { method: 'GET', url: '/inventory/:sku', action: 'inventory.get', resultSchema: Stock },

    {
      method: 'POST', url: '/orders', action: 'orders.place', status: 201, resultSchema: Order,
      params: (req) => {
        const userId = uid(req);
        const body = bodyOf(req);
        // No key from the client: one per HTTP request, so retries inside the platform stay idempotent.
        return { ...body, idempotencyKey: body.idempotencyKey === undefined ? randomUUID() : body.idempotencyKey, userId };
      },
    },
    { method: 'GET', url: '/orders', action: 'orders.list', resultSchema: OrderPage, params: (req) => pageParams(req, { userId: uid(req) }) },
    { method: 'GET', url: '/orders/:id', action: 'orders.get', resultSchema: Order, params: (req) => ({ userId: uid(req), orderId: (req.params as { id: string }).id }) },

    {
      method: 'POST', url: '/messages', action: 'messages.send', status: 202, resultSchema: Type.Object({ messageId: Type.String() }),
      params: (req) => { const from = uid(req); return { ...bodyOf(req), from }; },
    },
    { method: 'GET', url: '/messages', action: 'messages.inbox', resultSchema: MessagePage, params: (req) => pageParams(req, { userId: uid(req) }) },
    { method: 'GET', url: '/notifications', action: 'notifier.list', resultSchema: NotificationPage, params: (req) => pageParams(req, { userId: uid(req) }) },
  ];
}
