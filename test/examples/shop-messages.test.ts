import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MESSAGE_ID_RE, MESSAGE_KEYS, expectError, expectStatus, newUser, startTestShop, walkPages,
  type Message, type Page, type ShopHttp, type TestShop,
} from '../helpers/shop-http.js';
import { waitUntil } from '../helpers/wait.js';

// examples/shop over HTTP on the embedded default: messages between users, delivered through the
// queue to the recipient's inbox (at least once, stored once). CONTRACT.md is the spec.
describe('examples/shop: messages', () => {
  let shop: TestShop;
  let http: ShopHttp;

  beforeAll(async () => {
    shop = await startTestShop('messages');
    http = shop.http;
  });
  afterAll(async () => {
    await shop?.stop();
  });

  const send = (token: string, body: unknown): ReturnType<ShopHttp['post']> => http.post<{ messageId: string }>('/messages', body, { token });

  async function inbox(token: string): Promise<Message[]> {
    return (await walkPages<Message>(http, '/messages', 100, { token })).items;
  }

  it('accepts a message with 202 {messageId}; it reaches the recipient\'s inbox, not the sender\'s, once', async () => {
    const alice = await newUser(http, 'alice');
    const bob = await newUser(http, 'bob');
    const before = Date.now();
    const r = await send(alice.token, { to: bob.user.userId, text: 'Hello Bob — €5 for the lamp? 😀' });
    expectStatus(r, 202);
    expect(Object.keys(r.body as object)).toEqual(['messageId']);
    const { messageId } = r.body as { messageId: string };
    expect(messageId).toMatch(MESSAGE_ID_RE);
    let got: Message[] = [];
    await waitUntil(async () => (got = await inbox(bob.token)).length > 0, 15_000, "the message in Bob's inbox");
    expect(got.length).toBe(1);
    const m = got[0]!;
    expect(Object.keys(m).sort()).toEqual(MESSAGE_KEYS);
    expect(m).toMatchObject({ messageId, from: alice.user.userId, to: bob.user.userId, text: 'Hello Bob — €5 for the lamp? 😀' });
    expect(m.sentAt).toBeGreaterThanOrEqual(before - 1_000);
    expect(m.sentAt).toBeLessThanOrEqual(Date.now() + 1_000);
    expect(await inbox(alice.token)).toEqual([]);
    // Stored once: a later message arriving means the queue moved past the first one's deliveries.
    const r2 = await send(alice.token, { to: bob.user.userId, text: 'second' });
    expectStatus(r2, 202);
    await waitUntil(async () => (got = await inbox(bob.token)).some((x) => x.text === 'second'), 15_000, 'the second message');
    expect(got.map((x) => x.messageId)).toEqual([(r2.body as { messageId: string }).messageId, messageId]);
  });

  it('lists the inbox newest first and pages through it each message exactly once', async () => {
    const [a, b, c] = await Promise.all([newUser(http, 'pa'), newUser(http, 'pb'), newUser(http, 'pc')]);
    const ids: string[] = [];
    for (let k = 0; k < 7; k++) {
      const from = k % 2 === 0 ? a : c;
      const r = await send(from.token, { to: b.user.userId, text: `message ${k}` });
      expectStatus(r, 202);
      ids.push((r.body as { messageId: string }).messageId);
      // Distinct send times, so "newest first" has one right answer.
      await new Promise((res) => setTimeout(res, 3));
    }
    await waitUntil(async () => (await inbox(b.token)).length >= 7, 15_000, 'seven messages delivered');
    const { items, pages } = await walkPages<Message>(http, '/messages', 3, { token: b.token });
    expect(pages.length).toBe(3);
    expect(items.map((m) => m.messageId)).toEqual([...ids].reverse());
    expect(items.map((m) => m.text)).toEqual(Array.from({ length: 7 }, (_, k) => `message ${6 - k}`));
    for (let k = 1; k < items.length; k++) expect(items[k - 1]!.sentAt).toBeGreaterThanOrEqual(items[k]!.sentAt);
    expect(items.filter((m) => m.from === a.user.userId).length).toBe(4);
    expect(items.filter((m) => m.from === c.user.userId).length).toBe(3);
    // Default page: all seven, no cursor.
    const all = await http.get<Page<Message>>('/messages', { token: b.token });
    expect(all.body).toEqual({ items });
    expect(await inbox(a.token)).toEqual([]);
    expect(await inbox(c.token)).toEqual([]);
  });

  it('delivers 20 concurrent messages, each stored once', async () => {
    const [a, b] = await Promise.all([newUser(http, 'ca'), newUser(http, 'cb')]);
    const rs = await Promise.all(Array.from({ length: 20 }, (_, k) => send(a.token, { to: b.user.userId, text: `burst ${k}` })));
    for (const r of rs) expectStatus(r, 202);
    const ids = rs.map((r) => (r.body as { messageId: string }).messageId);
    expect(new Set(ids).size).toBe(20);
    await waitUntil(async () => (await inbox(b.token)).length >= 20, 15_000, 'twenty messages delivered');
    const got = await inbox(b.token);
    expect(got.map((m) => m.messageId).sort()).toEqual([...ids].sort());
  });

  it('accepts text of 1 and 2,000 characters', async () => {
    const [a, b] = await Promise.all([newUser(http, 'la'), newUser(http, 'lb')]);
    for (const text of ['x', '€'.repeat(2_000)]) expectStatus(await send(a.token, { to: b.user.userId, text }), 202);
    await waitUntil(async () => (await inbox(b.token)).length >= 2, 15_000, 'both messages delivered');
    expect((await inbox(b.token)).map((m) => m.text).sort()).toEqual(['x', '€'.repeat(2_000)].sort());
  });

  it('answers an unknown recipient with 404 and delivers nothing', async () => {
    const a = await newUser(http, 'ua');
    expectError(await send(a.token, { to: 'u000000000000', text: 'anyone there?' }), 404, 'PP_ERR_NOT_FOUND');
    expectError(await send(a.token, { to: 'uffffffffffff', text: 'anyone there?' }), 404, 'PP_ERR_NOT_FOUND');
    for (const to of ['nobody', 'U0123456789AB', 'x'.repeat(5_000), 'o00000000000000000000']) {
      const r = await send(a.token, { to, text: 'hi' });
      expect([400, 404], r.text.slice(0, 200)).toContain(r.status);
      expectError(r, r.status, r.status === 404 ? 'PP_ERR_NOT_FOUND' : 'PP_ERR_VALIDATION', r.status === 400 ? 'params.to' : undefined);
    }
  });

  it('rejects missing fields, wrong types and bad lengths with 400 naming the field', async () => {
    const [a, b] = await Promise.all([newUser(http, 'va'), newUser(http, 'vb')]);
    const to = b.user.userId;
    const cases: [unknown, string][] = [
      [{ text: 'hi' }, 'params.to'],
      [{ to }, 'params.text'],
      [{ to: 5, text: 'hi' }, 'params.to'],
      [{ to: null, text: 'hi' }, 'params.to'],
      [{ to, text: '' }, 'params.text'],
      [{ to, text: 'x'.repeat(2_001) }, 'params.text'],
      [{ to, text: 42 }, 'params.text'],
      [{ to, text: ['hi'] }, 'params.text'],
    ];
    for (const [body, field] of cases) expectError(await send(a.token, body), 400, 'PP_ERR_VALIDATION', field);
    for (const raw of ['{"to":"' + to + '","text":', '{"to":"' + to + '" "text":"x"}', '"hi"', '[]']) {
      expectError(await http.request('POST', '/messages', { token: a.token, raw }), 400, 'PP_ERR_VALIDATION');
    }
    // A few more sends of valid messages would show up; bad ones never do.
    const ok = await send(a.token, { to, text: 'the only one' });
    expectStatus(ok, 202);
    await waitUntil(async () => (await inbox(b.token)).length >= 1, 15_000, 'the valid message');
    expect((await inbox(b.token)).map((m) => m.text)).toEqual(['the only one']);
  });

  it('rejects bad limits on GET /messages with 400 params.limit', async () => {
    const a = await newUser(http, 'limits');
    for (const limit of ['0', '101', '1000', '-3', 'lots', '0.5']) {
      expectError(await http.get(`/messages?limit=${limit}`, { token: a.token }), 400, 'PP_ERR_VALIDATION', 'params.limit');
    }
  });

  it('never answered any request in this file with a 5xx', () => {
    expect(http.sent.length).toBeGreaterThan(50);
    expect(http.serverErrors()).toEqual([]);
  });
});
