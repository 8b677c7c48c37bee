/**
 * The shop's shapes (CONTRACT.md "Shapes") as TypeBox schemas — one source for request
 * validation (400 naming the field), result serialization (fast-json-stringify in the gateway) and
 * the stored rows — plus the table specs.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';

// ---- ids and bounded scalars ---------------------------------------------------------------------

/**
 * One character of text every store keeps exactly as sent: anything but NUL (PostgreSQL refuses it
 * in text) and lone UTF-16 surrogates (UTF-8 cannot carry one: it would be stored, queued and read
 * back as U+FFFD). A surrogate PAIR (an astral character such as an emoji) is one character.
 */
const TEXT_CHAR = '(?:[^\\u0000\\ud800-\\udfff]|[\\ud800-\\udbff][\\udc00-\\udfff])';
/** The pattern of client text that is stored or queued: 400 naming the field for anything else. */
export const TEXT_PATTERN = `^${TEXT_CHAR}*$`;
/** A client string bounded in length whose every character survives the store (TEXT_PATTERN). */
export function Text(bounds: { minLength?: number; maxLength: number }) {
  return Type.String({ ...bounds, pattern: TEXT_PATTERN });
}

export const UserId = Type.String({ pattern: '^u[0-9a-f]{12}$' });
export const OrderId = Type.String({ pattern: '^o[0-9a-f]{20}$' });
/** A checkout attempt (its workflow id): the order id, then `.<attempt>` from the second attempt on. */
export const PaymentId = Type.String({ pattern: '^o[0-9a-f]{20}(\\.[0-9]{1,6})?$' });
export const MessageId = Type.String({ pattern: '^m[0-9a-f]{20}$' });
/** Product ids / SKUs and category ids from a client: any short token; unknown ones are 404. */
export const AnyId = Text({ minLength: 1, maxLength: 64 });
/** `local@domain`: no whitespace or `@` in either part, and TEXT_CHAR's rule (no NUL, no lone surrogate). */
const EMAIL_CHAR = '(?:[^\\s@\\u0000\\ud800-\\udfff]|[\\ud800-\\udbff][\\udc00-\\udfff])';
export const Email = Type.String({ minLength: 3, maxLength: 254, pattern: `^${EMAIL_CHAR}+@${EMAIL_CHAR}+$` });
export const Password = Type.String({ minLength: 8, maxLength: 128 });
export const Name = Text({ minLength: 1, maxLength: 100 });
export const Bio = Text({ maxLength: 500 });
export const EpochMs = Type.Integer({ minimum: 0 });
export const Limit = Type.Integer({ minimum: 1, maximum: 100 });
export const Cursor = Type.String({ minLength: 1, maxLength: 1024 });
export const DEFAULT_LIMIT = 20;

// ---- contract shapes -------------------------------------------------------------------------------

export const User = Type.Object({ userId: UserId, email: Type.String(), name: Type.String(), bio: Type.String(), createdAt: EpochMs });
export type User = Static<typeof User>;

export const Preferences = Type.Object(
  {
    language: Type.Union([Type.Literal('en'), Type.Literal('de'), Type.Literal('fr'), Type.Literal('es')]),
    currency: Type.Union([Type.Literal('EUR'), Type.Literal('USD'), Type.Literal('GBP')]),
    newsletter: Type.Boolean(),
  },
  { additionalProperties: false },
);
export type Preferences = Static<typeof Preferences>;
export const DEFAULT_PREFERENCES: Preferences = { language: 'en', currency: 'EUR', newsletter: false };

export const Category = Type.Object({ id: Type.String(), name: Type.String() });
export type Category = Static<typeof Category>;

export const Product = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 64 }),
  categoryId: Type.String({ minLength: 1, maxLength: 64 }),
  name: Type.String({ minLength: 1, maxLength: 200 }),
  description: Type.String({ maxLength: 2000 }),
  priceCents: Type.Integer({ minimum: 0, maximum: 100_000_000 }),
});
export type Product = Static<typeof Product>;

export const OrderItem = Type.Object({ sku: Type.String(), qty: Type.Integer(), priceCents: Type.Integer() });
export type OrderItem = Static<typeof OrderItem>;
export const Order = Type.Object({
  orderId: Type.String(),
  userId: Type.String(),
  items: Type.Array(OrderItem),
  totalCents: Type.Integer(),
  status: Type.Literal('placed'),
  createdAt: EpochMs,
});
export type Order = Static<typeof Order>;

export const Message = Type.Object({ messageId: Type.String(), from: Type.String(), to: Type.String(), text: Type.String(), sentAt: EpochMs });
export type Message = Static<typeof Message>;

export const Notification = Type.Object({
  id: Type.String(),
  kind: Type.Literal('order-created'),
  orderId: Type.String(),
  totalCents: Type.Integer(),
  createdAt: EpochMs,
});
export type Notification = Static<typeof Notification>;

export const Session = Type.Object({ token: Type.String(), userId: Type.String(), expiresAt: EpochMs });
export const Stock = Type.Object({ sku: Type.String(), available: Type.Integer() });
export const Wallet = Type.Object({ userId: Type.String(), balanceCents: Type.Integer() });
export const Transfer = Type.Object({ transferId: Type.String(), from: Type.String(), to: Type.String(), amountCents: Type.Integer(), balanceCents: Type.Integer(), createdAt: EpochMs });

/** `{items, cursor?}` — cursor absent on the last page. */
export function PageOf<T extends TSchema>(item: T) {
  return Type.Object({ items: Type.Array(item), cursor: Type.Optional(Type.String()) });
}
export function ItemsOf<T extends TSchema>(item: T) {
  return Type.Object({ items: Type.Array(item) });
}

// ---- stored rows -----------------------------------------------------------------------------------

/** A user row: the public User plus what never leaves the service. */
export const UserRow = Type.Object({
  userId: Type.String(),
  email: Type.String(),
  name: Type.String(),
  bio: Type.String(),
  createdAt: Type.Integer(),
  passwordHash: Type.String(),
  role: Type.String(),
});
export type UserRow = Static<typeof UserRow>;

/** email -> userId; sign-up claims the email first (insert: a taken email is a conflict). */
export const EmailRow = Type.Object({ email: Type.String(), userId: Type.String() });
export const CategoryRow = Category;
export const ProductRow = Product;
/** One row per (lower-cased name word, product): search reads a prefix range of `term`. */
export const TermRow = Type.Object({ term: Type.String(), productId: Type.String() });
/**
 * Stock of one SKU. Reservations are steps of the checkout workflow (services/checkout.ts), each
 * applied once by the platform's transactions; `recent` (the per-SKU idempotency window of earlier
 * versions) is no longer written and stays only so stores made by them still open.
 */
export const StockRow = Type.Object({ sku: Type.String(), available: Type.Integer(), recent: Type.Array(Type.String()) });
export type StockRow = Static<typeof StockRow>;
export const OrderRow = Type.Object({
  userId: Type.String(),
  orderId: Type.String(),
  items: Type.Array(OrderItem),
  totalCents: Type.Integer(),
  status: Type.Literal('placed'),
  createdAt: Type.Integer(),
  /** When the payment was captured (the checkout's last step); the order-created event follows it. */
  paidAt: Type.Optional(Type.Integer()),
});
export type OrderRow = Static<typeof OrderRow>;
/** A user's store credit, in cents (never negative). */
export const WalletRow = Type.Object({ userId: Type.String(), balanceCents: Type.Integer() });
export type WalletRow = Static<typeof WalletRow>;
/** A credit transfer, recorded in the same transaction as the two balances (its id makes a retry a replay). */
export const TransferRow = Type.Object({ userId: Type.String(), transferId: Type.String(), toUserId: Type.String(), amountCents: Type.Integer(), createdAt: Type.Integer() });
export type TransferRow = Static<typeof TransferRow>;
/** The simulated payment provider's record of one order's payment (services/payments.ts). */
export const PaymentRow = Type.Object({
  /** The checkout attempt's workflow id: `<orderId>` or `<orderId>.<attempt>`. */
  paymentId: Type.String(),
  orderId: Type.String(),
  userId: Type.String(),
  amountCents: Type.Integer(),
  /** authorized | captured | voided | declined */
  state: Type.String(),
  authId: Type.String(),
  updatedAt: Type.Integer(),
});
export type PaymentRow = Static<typeof PaymentRow>;
/** The recipient's inbox (partitioned by recipient). */
export const InboxRow = Type.Object({ userId: Type.String(), messageId: Type.String(), from: Type.String(), to: Type.String(), text: Type.String(), sentAt: Type.Integer() });
export type InboxRow = Static<typeof InboxRow>;
export const NotificationRow = Type.Object({
  userId: Type.String(),
  id: Type.String(),
  kind: Type.Literal('order-created'),
  orderId: Type.String(),
  totalCents: Type.Integer(),
  createdAt: Type.Integer(),
});
export type NotificationRow = Static<typeof NotificationRow>;

/** The table specs (name -> spec), opened by index.ts. */
export const TABLES = {
  users: { schema: UserRow, primaryKey: ['userId'] },
  emails: { schema: EmailRow, primaryKey: ['email'] },
  categories: { schema: CategoryRow, primaryKey: ['id'] },
  products: { schema: ProductRow, primaryKey: ['id'], indexes: { byCategory: ['categoryId', 'id'] } },
  productTerms: { schema: TermRow, primaryKey: ['term', 'productId'] },
  inventory: { schema: StockRow, primaryKey: ['sku'] },
  orders: { schema: OrderRow, primaryKey: ['userId', 'orderId'], partitionKey: ['userId'], indexes: { recent: ['userId', 'createdAt'] } },
  wallets: { schema: WalletRow, primaryKey: ['userId'] },
  transfers: { schema: TransferRow, primaryKey: ['userId', 'transferId'], partitionKey: ['userId'] },
  payments: { schema: PaymentRow, primaryKey: ['paymentId'] },
  inbox: { schema: InboxRow, primaryKey: ['userId', 'messageId'], partitionKey: ['userId'], indexes: { recent: ['userId', 'sentAt'] } },
  notifications: { schema: NotificationRow, primaryKey: ['userId', 'id'], partitionKey: ['userId'], indexes: { recent: ['userId', 'createdAt'] } },
} as const;
