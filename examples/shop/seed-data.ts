/**
 * The shop's seed data (CONTRACT.md, "Seed data"): pure and deterministic, no platform imports, so
 * the shop, its handwritten peer (bench/shop-peer), the load generator and the tests all derive
 * exactly the same categories, products, stock and users from it.
 */
import { createHash } from 'node:crypto';

export const CATEGORY_COUNT = 20;
export const PRODUCT_COUNT = 2_000;
export const USER_COUNT = 100;
export const STOCK_PER_SKU = 1_000_000;
export const ADMIN_EMAIL = 'admin@example.com';
export const ADMIN_PASSWORD = 'admin-password';

export const CATEGORY_NAMES: readonly string[] = [
  'Lighting', 'Furniture', 'Kitchen', 'Garden', 'Office', 'Bath', 'Bedroom', 'Outdoor', 'Storage', 'Decor',
  'Tools', 'Textiles', 'Tableware', 'Kids', 'Pets', 'Sports', 'Travel', 'Music', 'Books', 'Crafts',
];

/** 16 adjectives x 25 nouns: product i is ADJECTIVES[(i-1) % 16] + NOUNS[floor((i-1)/16) % 25] (so 17 is "Brass Lamp 17"). */
export const ADJECTIVES: readonly string[] = [
  'Brass', 'Oak', 'Linen', 'Copper', 'Walnut', 'Ceramic', 'Velvet', 'Marble',
  'Bamboo', 'Steel', 'Wool', 'Glass', 'Cedar', 'Leather', 'Cotton', 'Stone',
];
export const NOUNS: readonly string[] = [
  'Chair', 'Lamp', 'Table', 'Shelf', 'Vase', 'Rug', 'Mug', 'Bowl', 'Clock', 'Mirror',
  'Basket', 'Stool', 'Desk', 'Bench', 'Kettle', 'Pillow', 'Blanket', 'Candle', 'Frame', 'Planter',
  'Tray', 'Cabinet', 'Sofa', 'Teapot', 'Hook',
];

export interface SeedCategory {
  readonly id: string;
  readonly name: string;
}

export interface SeedProduct {
  readonly id: string;
  readonly categoryId: string;
  readonly name: string;
  readonly description: string;
  readonly priceCents: number;
}

export interface SeedUser {
  /** Deterministic: `u` + 12 hex of sha256(email), so nodes seeding at once agree on ids. */
  readonly userId: string;
  readonly email: string;
  readonly password: string;
  readonly name: string;
  readonly role: 'user' | 'admin';
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** `c01`..`c20`. */
export function categoryId(n: number): string {
  return `c${pad(n, 2)}`;
}

/** `p00001`..`p02000` (also the SKU). */
export function productId(i: number): string {
  return `p${pad(i, 5)}`;
}

export function seedCategories(): SeedCategory[] {
  return CATEGORY_NAMES.map((name, k) => ({ id: categoryId(k + 1), name }));
}

/** Product i (1-based). */
export function seedProduct(i: number): SeedProduct {
  if (!Number.isInteger(i) || i < 1 || i > PRODUCT_COUNT) throw new RangeError(`product index ${i} outside 1..${PRODUCT_COUNT}`);
  const adjective = ADJECTIVES[(i - 1) % ADJECTIVES.length]!;
  const noun = NOUNS[Math.floor((i - 1) / ADJECTIVES.length) % NOUNS.length]!;
  const c = ((i - 1) % CATEGORY_COUNT) + 1;
  return {
    id: productId(i),
    categoryId: categoryId(c),
    name: `${adjective} ${noun} ${i}`,
    description: `${/^[AEIOU]/.test(adjective) ? 'An' : 'A'} ${adjective.toLowerCase()} ${noun.toLowerCase()} from our ${CATEGORY_NAMES[c - 1]!.toLowerCase()} range.`,
    priceCents: 100 + ((i * 7919) % 100_000),
  };
}

export function seedProducts(): SeedProduct[] {
  const out: SeedProduct[] = [];
  for (let i = 1; i <= PRODUCT_COUNT; i++) out.push(seedProduct(i));
  return out;
}

/** The user id the seed gives an email. */
export function seedUserId(email: string): string {
  return 'u' + createHash('sha256').update(email).digest('hex').slice(0, 12);
}

/** `user1@example.com`..`user100@example.com` (`password-<n>`), then the admin. */
export function seedUsers(): SeedUser[] {
  const out: SeedUser[] = [];
  for (let n = 1; n <= USER_COUNT; n++) {
    const email = `user${n}@example.com`;
    out.push({ userId: seedUserId(email), email, password: `password-${n}`, name: `User ${n}`, role: 'user' });
  }
  out.push({ userId: seedUserId(ADMIN_EMAIL), email: ADMIN_EMAIL, password: ADMIN_PASSWORD, name: 'Admin', role: 'admin' });
  return out;
}

/** Lower-cased name words (letters and digits), the terms search matches by prefix. */
export function nameTerms(name: string): string[] {
  const out = new Set<string>();
  for (const w of name.toLowerCase().split(/[^\p{L}\p{N}]+/u)) if (w.length > 0 && w.length <= 50) out.add(w);
  return [...out];
}
