/**
 * JSON Schemas of the shop's HTTP API (examples/shop/CONTRACT.md), as a Fastify user writes them:
 * Fastify validates bodies, queries and params with them (Ajv) and serializes 200/201/202 responses
 * with them (fast-json-stringify).
 */

const str = (minLength: number, maxLength: number) => ({ type: 'string', minLength, maxLength }) as const;

export const userSchema = {
  type: 'object',
  required: ['userId', 'email', 'name', 'bio', 'createdAt'],
  properties: { userId: { type: 'string' }, email: { type: 'string' }, name: { type: 'string' }, bio: { type: 'string' }, createdAt: { type: 'integer' } },
} as const;

export const preferencesSchema = {
  type: 'object',
  required: ['language', 'currency', 'newsletter'],
  properties: {
    language: { type: 'string', enum: ['en', 'de', 'fr', 'es'] },
    currency: { type: 'string', enum: ['EUR', 'USD', 'GBP'] },
    newsletter: { type: 'boolean' },
  },
} as const;

export const categorySchema = {
  type: 'object',
  required: ['id', 'name'],
  properties: { id: { type: 'string' }, name: { type: 'string' } },
} as const;

export const productSchema = {
  type: 'object',
  required: ['id', 'categoryId', 'name', 'description', 'priceCents'],
  properties: { id: { type: 'string' }, categoryId: { type: 'string' }, name: { type: 'string' }, description: { type: 'string' }, priceCents: { type: 'integer' } },
} as const;

export const orderSchema = {
  type: 'object',
  required: ['orderId', 'userId', 'items', 'totalCents', 'status', 'createdAt'],
  properties: {
    orderId: { type: 'string' },
    userId: { type: 'string' },
    items: {
      type: 'array',
      items: { type: 'object', required: ['sku', 'qty', 'priceCents'], properties: { sku: { type: 'string' }, qty: { type: 'integer' }, priceCents: { type: 'integer' } } },
    },
    totalCents: { type: 'integer' },
    status: { type: 'string' },
    createdAt: { type: 'integer' },
  },
} as const;

export const messageSchema = {
  type: 'object',
  required: ['messageId', 'from', 'to', 'text', 'sentAt'],
  properties: { messageId: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, text: { type: 'string' }, sentAt: { type: 'integer' } },
} as const;

export const notificationSchema = {
  type: 'object',
  required: ['id', 'kind', 'orderId', 'totalCents', 'createdAt'],
  properties: { id: { type: 'string' }, kind: { type: 'string' }, orderId: { type: 'string' }, totalCents: { type: 'integer' }, createdAt: { type: 'integer' } },
} as const;

/** `{items, cursor?}`: a page of `item`. */
export const pageOf = (item: object) => ({
  type: 'object',
  required: ['items'],
  properties: { items: { type: 'array', items: item }, cursor: { type: 'string' } },
}) as const;

/** `?limit&cursor`; the cursor's shape depends on the list (a product id, or a row sequence number). */
export const pageQuery = (cursorPattern: string) => ({
  type: 'object',
  properties: { limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 }, cursor: { type: 'string', pattern: cursorPattern } },
}) as const;

/** Cursor of the per-user lists (orders, messages, notifications): the row's sequence number. */
export const SEQ_CURSOR = '^[0-9]{1,15}$';
export const PRODUCT_ID = '^p[0-9]{5}$';

export const idParam = { type: 'object', required: ['id'], properties: { id: str(1, 64) } } as const;

export const signUpBody = {
  type: 'object',
  required: ['email', 'password', 'name'],
  properties: { email: { type: 'string', format: 'email', maxLength: 254 }, password: str(8, 128), name: str(1, 100) },
} as const;

export const signInBody = {
  type: 'object',
  required: ['email', 'password'],
  properties: { email: str(1, 254), password: str(1, 128) },
} as const;

export const sessionSchema = {
  type: 'object',
  required: ['token', 'userId', 'expiresAt'],
  properties: { token: { type: 'string' }, userId: { type: 'string' }, expiresAt: { type: 'integer' } },
} as const;

export const patchMeBody = {
  type: 'object',
  properties: { name: str(1, 100), bio: str(0, 500) },
} as const;

export const putProductBody = {
  type: 'object',
  required: ['name', 'categoryId', 'priceCents', 'description'],
  properties: { name: str(1, 200), categoryId: str(1, 64), priceCents: { type: 'integer', minimum: 0 }, description: str(0, 2000) },
} as const;

export const searchQuery = {
  type: 'object',
  required: ['q'],
  properties: { q: str(1, 50), limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 } },
} as const;

export const placeOrderBody = {
  type: 'object',
  required: ['items'],
  properties: {
    items: {
      type: 'array',
      minItems: 1,
      maxItems: 20,
      items: { type: 'object', required: ['sku', 'qty'], properties: { sku: str(1, 64), qty: { type: 'integer', minimum: 1, maximum: 100 } } },
    },
    idempotencyKey: str(1, 64),
  },
} as const;

export const sendMessageBody = {
  type: 'object',
  required: ['to', 'text'],
  properties: { to: str(1, 64), text: str(1, 2000) },
} as const;

export const messageIdSchema = { type: 'object', required: ['messageId'], properties: { messageId: { type: 'string' } } } as const;
export const inventorySchema = { type: 'object', required: ['sku', 'available'], properties: { sku: { type: 'string' }, available: { type: 'integer' } } } as const;

export const USER_ID = '^u[0-9a-f]{12}$';

export const walletSchema = { type: 'object', required: ['userId', 'balanceCents'], properties: { userId: { type: 'string' }, balanceCents: { type: 'integer' } } } as const;

export const transferBody = {
  type: 'object',
  required: ['toUserId', 'amountCents'],
  properties: {
    toUserId: { type: 'string', pattern: USER_ID },
    amountCents: { type: 'integer', minimum: 1, maximum: 100_000_000 },
    transferId: str(1, 64),
  },
} as const;

export const transferSchema = {
  type: 'object',
  required: ['transferId', 'from', 'to', 'amountCents', 'balanceCents', 'createdAt'],
  properties: {
    transferId: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' },
    amountCents: { type: 'integer' }, balanceCents: { type: 'integer' }, createdAt: { type: 'integer' },
  },
} as const;
