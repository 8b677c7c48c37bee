/**
 * Writes the seed data (seed-data.ts) into the store. Idempotent and safe when several nodes seed
 * at once:
 * - a marker in the `meta` kv namespace makes every later start skip seeding (one read);
 * - categories, products and search terms are upserts of deterministic rows (two seeders write
 *   the same values);
 * - stock rows are only ever INSERTED for SKUs that have none (a conflict means another seeder won:
 *   read again), so seeding never resets stock that orders already took;
 * - users have deterministic ids; the email claim is written after the user row, so an email
 *   always points at a user. Passwords are hashed with async scrypt, all at once (libuv's pool).
 * Writes go in batches of up to 1000 ops (one group-committed transaction per shard each).
 */
import { isPowerplantError, type Kv, type Table } from 'powerplant';
import { hashPassword } from './auth.js';
import type { UserRow } from './schema.js';
import { nameTerms, seedCategories, seedProducts, seedUsers, STOCK_PER_SKU } from './seed-data.js';
import type { ShopTables } from './services/deps.js';

const SEED_MARK = 'seed:v1';
const BATCH_MAX = 1000;
/** Store credit of each seeded user's wallet, cents. */
export const SEED_CREDIT_CENTS = 100_000;

function chunks<T>(xs: readonly T[], n = BATCH_MAX): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

async function seedCatalog(t: ShopTables): Promise<void> {
  const products = seedProducts();
  const terms = products.flatMap((p) => nameTerms(p.name).map((term) => ({ term, productId: p.id })));
  await Promise.all([
    t.categories.batch(seedCategories().map((row) => ({ op: 'upsert' as const, row }))),
    ...chunks(products).map((c) => t.products.batch(c.map((row) => ({ op: 'upsert' as const, row })))),
    ...chunks(terms).map((c) => t.productTerms.batch(c.map((row) => ({ op: 'upsert' as const, row })))),
    ...chunks(products.map((p) => p.id)).map((skus) => seedStock(t, skus)),
  ]);
}

/**
 * Inserts the rows missing among `keys` (never overwriting one: stock orders took, a balance a
 * transfer moved); retried when a concurrent seeder inserted some first.
 */
async function insertMissing<R extends Record<string, unknown>>(table: Table<R>, keys: readonly string[], rowOf: (key: string) => R): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const have = await table.getMany(keys);
    const missing = keys.filter((_, i) => have[i] === undefined);
    if (missing.length === 0) return;
    try {
      await table.batch(missing.map((k) => ({ op: 'insert' as const, row: rowOf(k) })));
      return;
    } catch (err) {
      if (!isPowerplantError(err, 'PP_ERR_CONFLICT') || attempt >= 5) throw err;
    }
  }
}

function seedStock(t: ShopTables, skus: readonly string[]): Promise<void> {
  return insertMissing(t.inventory, skus, (sku) => ({ sku, available: STOCK_PER_SKU, recent: [] }));
}

async function seedUserAccounts(t: ShopTables): Promise<void> {
  const all = seedUsers();
  const have = await t.emails.getMany(all.map((u) => u.email));
  const missing = all.filter((_, i) => have[i] === undefined);
  if (missing.length === 0) return;
  const now = Date.now();
  const rows: UserRow[] = await Promise.all(
    missing.map(async (u) => ({ userId: u.userId, email: u.email, name: u.name, bio: '', createdAt: now, passwordHash: await hashPassword(u.password), role: u.role })),
  );
  await t.users.batch(rows.map((row) => ({ op: 'upsert' as const, row })));
  await seedWallets(t, rows.map((r) => r.userId));
  await t.emails.batch(rows.map((r) => ({ op: 'upsert' as const, row: { email: r.email, userId: r.userId } })));
}

/** Wallets of the seeded users: inserted only where missing (a seeder never resets a balance). */
function seedWallets(t: ShopTables, userIds: readonly string[]): Promise<void> {
  return insertMissing(t.wallets, userIds, (userId) => ({ userId, balanceCents: SEED_CREDIT_CENTS }));
}

/** Seeds unless the marker says it was done. Resolves whether this call wrote anything. */
export async function seedShop(tables: ShopTables, meta: Kv<unknown>): Promise<boolean> {
  if ((await meta.get(SEED_MARK)) !== undefined) return false;
  await Promise.all([seedCatalog(tables), seedUserAccounts(tables)]);
  await meta.put(SEED_MARK, { atMs: Date.now() });
  return true;
}
