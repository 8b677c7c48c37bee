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

/**
 * A cursor of the store's format (base64url of version 1 | 16-byte tag | JSON sort key) carrying
 * `values`, with a tag forged without the store's secret: what a client can craft. The store's
 * own suite (test/store/cursors.test.ts) re-signs hostile values with the secret to reach the
 * type checks behind the signature; over HTTP both must be a 400 naming the cursor.
 */
function cursorOf(values: readonly unknown[]): string {
  return Buffer.concat([Buffer.from([1]), Buffer.alloc(16, 7), Buffer.from(JSON.stringify(values))]).toString('base64url');
}
/** The sort-key values a genuine cursor carries (after the version byte and the tag). */
function cursorValues(cursor: string): unknown[] {
  return JSON.parse(Buffer.from(cursor, 'base64url').subarray(17).toString('utf8')) as unknown[];
}
/** The pre-signature format (base64url of the JSON sort key): must be refused too. */
function unsignedCursorOf(values: readonly unknown[]): string {
  return b64url(JSON.stringify(values));
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

    describe('one idempotency key, different bodies', () => {
      type Item = { sku: string; qty: number };
      const place = (token: string, items: Item[], idempotencyKey: string): ReturnType<ShopHttp['post']> =>
        http.post<Order>('/orders', { items, idempotencyKey }, { token });
      async function available(sku: string): Promise<number> {
        const r = await http.get<{ available: number }>(`/inventory/${sku}`);
        expectStatus(r, 200);
        return r.body.available;
      }
      const canon = (items: readonly Item[]): string => JSON.stringify([...items].map((i) => [i.sku, i.qty]).sort());
      let skuSeq = 1500;
      const freshSku = (): string => `p${String(skuSeq++).padStart(5, '0')}`;

      it('binds a key to its body: the same key with other items is 409 PP_ERR_CONFLICT naming params.idempotencyKey and reserves nothing; the same items in another order are the same request', async () => {
        const [s1, s2] = [freshSku(), freshSku()];
        const [a1, a2] = [await available(s1), await available(s2)];
        const first = await place(user.token, [{ sku: s1, qty: 2 }, { sku: s2, qty: 1 }], 'bound-key');
        expectStatus(first, 201);
        for (const other of [[{ sku: s1, qty: 3 }, { sku: s2, qty: 1 }], [{ sku: s1, qty: 2 }], [{ sku: s2, qty: 1 }, { sku: freshSku(), qty: 1 }]]) {
          expectError(await place(user.token, other, 'bound-key'), 409, 'PP_ERR_CONFLICT', 'params.idempotencyKey');
        }
        const same = await place(user.token, [{ sku: s2, qty: 1 }, { sku: s1, qty: 2 }], 'bound-key');
        expectStatus(same, 201);
        expect((same.body as Order).orderId).toBe((first.body as Order).orderId);
        expect([await available(s1), await available(s2)]).toEqual([a1 - 2, a2 - 1]);
      });

      it('two concurrent requests with one key and different items: one order, holding exactly what is reserved; the other 409, reserving nothing (10 rounds)', async () => {
        for (let round = 0; round < 10; round++) {
          const [shared, other] = [freshSku(), freshSku()];
          const [s0, o0] = [await available(shared), await available(other)];
          const key = `race-${engines}-${round}`;
          // Round by round: the bodies overlap on one SKU with other quantities, or not at all.
          const bodies: Item[][] = round % 2 === 0
            ? [[{ sku: shared, qty: 50 }], [{ sku: shared, qty: 1 }, { sku: other, qty: 100 }]]
            : [[{ sku: shared, qty: 100 }], [{ sku: other, qty: 1 }]];
          const rs = await Promise.all(bodies.map((b) => place(user.token, b, key)));
          const won = rs.filter((r) => r.status === 201);
          expect(won.length, rs.map((r) => r.text.slice(0, 200)).join(' | ')).toBe(1);
          for (const r of rs) if (r.status !== 201) expectError(r, 409, 'PP_ERR_CONFLICT', 'params.idempotencyKey');
          const o = won[0]!.body as Order;
          expect(canon(o.items)).toBe(canon(bodies[rs.indexOf(won[0]!)]!));
          const held = (sku: string): number => o.items.find((i) => i.sku === sku)?.qty ?? 0;
          expect([await available(shared), await available(other)], `round ${round}`).toEqual([s0 - held(shared), o0 - held(other)]);
        }
      });

      it('a checkout is a workflow: each step recorded once, the stock and the payment exactly what the order holds', async () => {
        const { orderIdOf } = await import('../../examples/shop/services/orders.js');
        const sku = freshSku();
        const s0 = await available(sku);
        const key = `wf-${engines}`;
        const r = await place(user.token, [{ sku, qty: 4 }], key);
        expectStatus(r, 201);
        expectStatus(await place(user.token, [{ sku, qty: 4 }], key), 201);
        const orderId = orderIdOf(user.userId, key);
        const st = await shop.shop.node.callDynamic('payments.get', { paymentId: orderId });
        expect(st).toMatchObject({ orderId, state: 'captured', amountCents: (r.body as Order).totalCents });
        const wf = await shop.shop.workflows.status(orderId);
        expect(wf.state).toBe('completed');
        expect(wf.steps.map((x) => `${x.name}:${x.state}`)).toEqual(['reserve:done', 'authorize:done', 'write:done', 'capture:done']);
        expect(await available(sku)).toBe(s0 - 4);
      });

      it('keeps stock exact under any interleaving of concurrent orders with shared and different keys and bodies, on scarce stock (property, seeded)', async () => {
        const seed = Number(process.env.PP_FUZZ_SEED ?? 20_260_520);
        const users = await Promise.all([newUser(http, 'prop-a'), newUser(http, 'prop-b')]);
        const inventory = await shop.shop.store.table('inventory', TABLES.inventory);
        let runNo = 0;
        const request = fc.record({ user: fc.nat(1), key: fc.nat(2), body: fc.nat(3) });
        const bodyArb = fc.uniqueArray(fc.record({ sku: fc.nat(2), qty: fc.integer({ min: 1, max: 6 }) }), { minLength: 1, maxLength: 3, selector: (i) => i.sku });
        await fc.assert(
          fc.asyncProperty(fc.array(bodyArb, { minLength: 4, maxLength: 4 }), fc.array(request, { minLength: 2, maxLength: 12 }), fc.array(fc.integer({ min: 0, max: 12 }), { minLength: 3, maxLength: 3 }), async (bodies, requests, stock) => {
            runNo++;
            const skus = [freshSku(), freshSku(), freshSku()];
            await Promise.all(skus.map((sku, i) => shop.setStock(sku, stock[i]!)));
            const itemsOf = (b: number): Item[] => bodies[b]!.map((i) => ({ sku: skus[i.sku]!, qty: i.qty }));
            const keyOf = (k: number): string => `prop-${engines}-${runNo}-${k}`;
            const rs = await Promise.all(requests.map((q) => place(users[q.user]!.token, itemsOf(q.body), keyOf(q.key))));
            // Every answer is a contract answer; a 201 is the order of its own body.
            const orderOfKey = new Map<string, string>();
            rs.forEach((r, i) => {
              const q = requests[i]!;
              if (r.status === 201) {
                const o = r.body as Order;
                expect(canon(o.items)).toBe(canon(itemsOf(q.body)));
                const k = `${q.user}/${q.key}`;
                expect(orderOfKey.get(k) ?? o.orderId, `one order per (user, key)`).toBe(o.orderId);
                orderOfKey.set(k, o.orderId);
              } else {
                expect([409], r.text.slice(0, 300)).toContain(r.status);
                expectError(r, 409, 'PP_ERR_CONFLICT');
              }
            });
            // Stock + everything the orders hold = what there was; nothing held for a request that got no order.
            const orders: Order[] = [];
            for (const u of users) {
              const page = await http.get<Page<Order>>('/orders?limit=100', { token: u.token });
              orders.push(...page.body.items.filter((o) => o.items.some((i) => skus.includes(i.sku))));
            }
            expect(new Set(orders.map((o) => o.orderId))).toEqual(new Set(orderOfKey.values()));
            for (const [i, sku] of skus.entries()) {
              const row = (await inventory.get(sku))!.row;
              const held = orders.reduce((sum, o) => sum + (o.items.find((it) => it.sku === sku)?.qty ?? 0), 0);
              expect(row.available + held, `${sku}: stock ${row.available} + held ${held} vs initial ${stock[i]}`).toBe(stock[i]);
            }
          }),
          { seed, numRuns: engines === 'postgres' ? 25 : 40, endOnFailure: true },
        );
      });
    });

    describe('hostile bodies, headers and cursors on every route', () => {
      /** A 4xx in the contract's error body. */
      function expectRefused(r: Awaited<ReturnType<ShopHttp['get']>>, what: string, field?: string): void {
        expect(r.status >= 400 && r.status < 500, `${what}: got ${r.status} ${r.text.slice(0, 200)}`).toBe(true);
        expectError(r, r.status, (r.body as { error?: { code?: string } }).error?.code ?? '(no contract body)', field);
      }

      it('refuses NUL and lone surrogates in every stored text field with 400 naming the field', async () => {
        // JSON escapes, so the server's JSON parser makes the NUL and the lone surrogates.
        const bad = ['\\u0000', 'a\\u0000', '\\ud800', 'x\\udfffy'];
        const raw = (o: Record<string, string>): string => `{${Object.entries(o).map(([k, v]) => `"${k}":"${v}"`).join(',')}}`;
        for (const v of bad) {
          expectError(await http.request('POST', '/users', { raw: raw({ email: `a${v}@x.example`, password: 'password-ok', name: 'N' }) }), 400, 'PP_ERR_VALIDATION', 'params.email');
          expectError(await http.request('POST', '/users', { raw: raw({ email: 'nul-name@x.example', password: 'password-ok', name: `N${v}` }) }), 400, 'PP_ERR_VALIDATION', 'params.name');
          expectError(await http.request('POST', '/sessions', { raw: raw({ email: `user1${v}@example.com`, password: 'password-1' }) }), 400, 'PP_ERR_VALIDATION', 'params.email');
          expectError(await http.request('PATCH', '/me', { token: user.token, raw: raw({ name: `N${v}` }) }), 400, 'PP_ERR_VALIDATION', 'params.name');
          expectError(await http.request('PATCH', '/me', { token: user.token, raw: raw({ bio: `b${v}` }) }), 400, 'PP_ERR_VALIDATION', 'params.bio');
          const product = { name: 'Brass Lamp', categoryId: 'c01', description: 'd' };
          for (const f of ['name', 'categoryId', 'description'] as const) {
            const body = `{"name":"${f === 'name' ? `n${v}` : product.name}","categoryId":"${f === 'categoryId' ? `c01${v}` : 'c01'}","priceCents":100,"description":"${f === 'description' ? `d${v}` : 'd'}"}`;
            expectError(await http.request('PUT', '/products/p00041', { token: adminToken, raw: body }), 400, 'PP_ERR_VALIDATION', `params.${f}`);
          }
          expectError(await http.request('POST', '/orders', { token: user.token, raw: `{"items":[{"sku":"p00001${v}","qty":1}]}` }), 400, 'PP_ERR_VALIDATION', 'params.items.0.sku');
          expectError(await http.request('POST', '/orders', { token: user.token, raw: `{"items":[{"sku":"p00001","qty":1}],"idempotencyKey":"k${v}"}` }), 400, 'PP_ERR_VALIDATION', 'params.idempotencyKey');
        }
        for (const path of ['/products/%00x1', '/products/p0%00001', '/inventory/%00', '/categories/c0%001/products', '/orders/o%00']) {
          const r = await http.get(path, { token: user.token });
          expectRefused(r, path);
        }
      });

      it('answers hostile JSON (odd shapes, numbers, prototype keys, deep nesting, bad encodings) with a 4xx in the contract\'s error body', async () => {
        const bodies: [string, string, string | undefined][] = [
          ['POST', '/orders', '{"items":[{"sku":"p00001","qty":1e400}]}'],
          ['POST', '/orders', '{"items":[{"sku":"p00001","qty":-0.0}]}'],
          ['POST', '/orders', '{"items":[{"sku":"p00001","qty":1.0000000000000002}]}'],
          ['POST', '/orders', '{"items":[{"sku":"p00001","qty":9007199254740993}]}'],
          ['POST', '/orders', '{"__proto__":{"admin":true},"items":[]}'],
          ['POST', '/orders', '{"constructor":{"prototype":{"x":1}},"items":[{"sku":"p00001","qty":1}]}'],
          ['POST', '/orders', `{"items":${'['.repeat(5_000)}${']'.repeat(5_000)}}`],
          ['POST', '/orders', '{"items":[{"sku":"p00001","qty":1}],"items":{"0":{"sku":"p00001","qty":1}}}'],
          ['POST', '/orders', '\ufeff{"items":[{"sku":"p00001","qty":1}]'],
          ['POST', '/messages', '{"to":["u000000000000"],"text":"x"}'],
          ['POST', '/messages', '{"to":"u000000000000","text":{"$gt":""}}'],
          ['PATCH', '/me', '[]'],
          ['PATCH', '/me', '"text"'],
          ['PATCH', '/me', '{"name":"a"}{"name":"b"}'],
          ['PUT', '/me/preferences', '{"language":"en","currency":"EUR","newsletter":"false"}'],
          ['PUT', '/products/p00041', '{"name":"n","categoryId":"c01","priceCents":1e21,"description":""}'],
          ['POST', '/users', '{"email":"x@y","password":"12345678","name":"n","role":"admin"}'],
          ['POST', '/sessions', '{"email":{"toString":"x"},"password":"x"}'],
        ];
        for (const [method, path, raw] of bodies) {
          const token = path === '/users' || path === '/sessions' ? undefined : path.startsWith('/products') ? adminToken : user.token;
          expectRefused(await http.request(method, path, { raw: raw!, ...(token === undefined ? {} : { token }) }), `${method} ${path} ${raw!.slice(0, 60)}`);
        }
        // Bytes that are not UTF-8, and bodies in other content types.
        expectRefused(await http.request('POST', '/orders', { token: user.token, raw: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]) }), 'invalid UTF-8');
        for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16', 'application/octet-stream']) {
          const r = await http.request('POST', '/orders', { token: user.token, raw: '{"items":[{"sku":"p00001","qty":1}]}', contentType });
          if (r.status !== 201) expectRefused(r, contentType);
        }
        // A body cannot act for someone else: its userId is overridden by the token's.
        const other = await newUser(http, 'victim');
        const patched = await http.request('PATCH', '/me', { token: user.token, raw: `{"userId":"${other.user.userId}","name":"Mallory"}` });
        if (patched.status === 200) expect((patched.body as { userId: string }).userId).toBe(user.userId);
        else expectRefused(patched, 'PATCH /me with a userId');
        expect((await http.get<{ name: string }>('/me', { token: other.token })).body.name).not.toBe('Mallory');
      });

      it('answers hostile headers with a 4xx in the contract\'s error body (or serves the request), never a 5xx', async () => {
        const auths = [
          'Bearer', 'Bearer ', 'Bearer  ', `Bearer ${'a'.repeat(10_000)}`, `Bearer ${user.token} ${user.token}`, `Basic ${b64url('a:b')}`,
          `bearer	${user.token}`, `Bearer ${user.token.replace('.', '..')}`, `Bearer .${user.token.split('.')[1]!}`, `Bearer ${user.token.split('.')[0]!}.`,
        ];
        for (const authorization of auths) {
          const r = await http.get('/orders', { authorization });
          if (r.status !== 200) expectError(r, 401, 'PP_ERR_UNAUTHORIZED');
        }
        const odd: Record<string, string>[] = [
          { 'x-request-id': 'x'.repeat(5_000) }, { 'x-request-id': '../../etc/passwd' }, { 'x-request-id': '' },
          { accept: 'text/html' }, { accept: '*/*;q=0' }, { 'accept-encoding': 'br;q=1, identity;q=0' },
          { 'content-encoding': 'gzip' }, { 'x-forwarded-for': '1.1.1.1, '.repeat(500) }, { cookie: 'a='.repeat(2_000) },
          { 'if-none-match': '*' }, { range: 'bytes=0-0' }, { 'x-http-method-override': 'DELETE' },
        ];
        for (const headers of odd) {
          for (const [method, path, json] of [['GET', '/products/p00001', undefined], ['POST', '/orders', { items: [{ sku: 'p00001', qty: 1 }] }]] as const) {
            const r = await http.request(method, path, { token: user.token, headers, ...(json === undefined ? {} : { json }) });
            if (r.status >= 300) expectRefused(r, `${method} ${path} ${JSON.stringify(headers).slice(0, 60)}`);
          }
        }
      });

      it('answers hostile query strings and forged cursors on every list with 400 naming the parameter, never a 5xx', async () => {
        // A real cursor of each list, to forge right-shaped ones from.
        for (let i = 0; i < 3; i++) expectStatus(await http.post('/orders', { items: [{ sku: 'p00041', qty: 1 }], idempotencyKey: `cursor-${i}` }, { token: user.token }), 201);
        await http.post('/messages', { to: user.userId, text: 'one' }, { token: user.token });
        await http.post('/messages', { to: user.userId, text: 'two' }, { token: user.token });
        const lists = ['/categories/c01/products', '/orders', '/messages', '/notifications'];
        for (const list of lists) {
          for (const q of ['limit=1e2', 'limit[]=1', 'limit=0x10', 'limit=%00', 'cursor=', 'cursor[]=x', 'cursor[a]=x', 'cursor=a&cursor=b', `cursor=${'%FF'.repeat(10)}`]) {
            const r = await http.get(`${list}?${q}`, { token: user.token });
            if (r.status !== 200) expectRefused(r, `${list}?${q}`);
          }
        }
        let sample: unknown[] | undefined;
        const wrong: string[] = [];
        await waitUntil(async () => {
          const r = await http.get<Page<Message>>('/messages?limit=1', { token: user.token });
          return r.body.cursor !== undefined;
        }, 15_000, 'two messages in the inbox');
        for (const list of lists) {
          const first = await http.get<Page<unknown>>(`${list}?limit=1`, { token: user.token });
          expectStatus(first, 200);
          expect(first.body.cursor, `${list} has a second page`).toBeDefined();
          sample = cursorValues(first.body.cursor!);
          const forged: unknown[][] = [];
          sample.forEach((v, i) => {
            const at = (x: unknown): unknown[] => sample!.map((y, j) => (j === i ? x : y));
            if (typeof v === 'string') forged.push(at(`${v}\u0000`), at('\u0000'), at(5), at(null), at({ b: 'AA' }));
            else forged.push(at(0.1), at(9_223_372_036_854_776_000), at(-1e308), at('1'), at(null), at([1]));
          });
          forged.push([...sample, 'extra'], sample.slice(1), [], [sample]);
          for (const cursor of [...forged.map(cursorOf), ...forged.map(unsignedCursorOf), unsignedCursorOf(sample)]) {
            const r = await http.get(`${list}?limit=1&cursor=${cursor}`, { token: user.token });
            const body = r.body as { error?: { code?: string; field?: string } };
            if (r.status !== 400 || body.error?.code !== 'PP_ERR_VALIDATION' || body.error.field !== 'params.cursor') {
              wrong.push(`${list} cursor ${cursor.slice(0, 60)} -> ${r.status} ${r.text.slice(0, 120)}`);
            }
          }
        }
        expect(wrong).toEqual([]);
      });
    });

    it('never answered any request in this file with a 5xx', () => {
      expect(http.sent.length).toBeGreaterThan(20);
      expect(http.serverErrors()).toEqual([]);
    });
  });
}

