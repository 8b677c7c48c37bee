/**
 * users: sign-up, sign-in (scrypt, HMAC session tokens), profile, preferences.
 *
 * Sign-up is one platform transaction: the email claim (`emails`, so a taken email is
 * PP_ERR_CONFLICT and two concurrent sign-ups of one email cannot both win, on any number of
 * nodes), the user row and the user's wallet commit together or not at all.
 * Tokens are verified statelessly at the gateway edge (routes.ts); this service only issues them.
 * The /me actions (me, update, get/putPreferences) take the token's user id and answer 401 when
 * that user does not exist: a validly signed token for no user is no session (not a 404).
 */
import { randomBytes } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { action, defineService, isPowerplantError, ppError } from 'powerplant';
import { DUMMY_PASSWORD_HASH, hashPassword, issueToken, verifyPassword, type Role } from '../auth.js';
import { Bio, DEFAULT_PREFERENCES, Email, Name, Password, Preferences, Session, Text, User, UserId, type User as UserT, type UserRow } from '../schema.js';
import type { ShopDeps } from './deps.js';

export function publicUser(r: UserRow): UserT {
  return { userId: r.userId, email: r.email, name: r.name, bio: r.bio, createdAt: r.createdAt };
}

/** Emails are unique case-insensitively: the claim is on the lower-cased, trimmed form (the user keeps what they typed). */
export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

function noSession(): Error {
  return ppError('PP_ERR_UNAUTHORIZED', { field: 'headers.authorization', message: 'session token names no user' });
}

export function usersService(d: ShopDeps) {
  const { users, emails } = d.tables;

  async function getUser(userId: string, field: string): Promise<UserRow> {
    const u = await users.get(userId);
    if (u === undefined) throw ppError('PP_ERR_NOT_FOUND', { field, message: `${field}: no user '${userId}'` });
    return u.row;
  }

  /**
   * The caller of a /me route (its id comes from a verified session token): a token naming a user
   * that does not exist (deleted, or a store reset under a kept secret) is no session: 401.
   */
  async function callerOf(userId: string): Promise<UserRow> {
    const u = await users.get(userId);
    if (u === undefined) throw noSession();
    return u.row;
  }

  return defineService({
    name: 'users',
    actions: {
      signUp: action({
        params: Type.Object({ email: Email, password: Password, name: Name }, { additionalProperties: false }),
        result: User,
        handler: async (_ctx, p) => {
          const email = normalizeEmail(p.email);
          const passwordHash = await hashPassword(p.password);
          const userId = 'u' + randomBytes(6).toString('hex');
          const row: UserRow = { userId, email: p.email, name: p.name, bio: '', createdAt: Date.now(), passwordHash, role: 'user' };
          // One transaction: the email claim, the user and the wallet commit together or not at
          // all (a taken email writes nothing; two sign-ups of one email cannot both commit).
          try {
            await d.txs.run(async (tx) => {
              await tx.insert(emails, { email, userId });
              await tx.insert(users, row);
              await tx.insert(d.tables.wallets, { userId, balanceCents: d.signUpCreditCents });
            });
          } catch (err) {
            if (isPowerplantError(err, 'PP_ERR_CONFLICT')) throw ppError('PP_ERR_CONFLICT', { field: 'params.email', message: 'params.email: already taken' });
            throw err;
          }
          return publicUser(row);
        },
      }),
      signIn: action({
        params: Type.Object({ email: Text({ maxLength: 254 }), password: Type.String({ maxLength: 128 }) }, { additionalProperties: false }),
        result: Session,
        handler: async (_ctx, p) => {
          const claim = await emails.get(normalizeEmail(p.email));
          const user = claim === undefined ? undefined : (await users.get(claim.row.userId))?.row;
          // An unknown email costs one scrypt too, so timing does not tell which emails exist.
          const ok = await verifyPassword(p.password, user?.passwordHash ?? DUMMY_PASSWORD_HASH);
          if (user === undefined || !ok) throw ppError('PP_ERR_UNAUTHORIZED', { message: 'wrong email or password' });
          const s = issueToken(d.sessionKey, user.userId, user.role === 'admin' ? 'admin' : ('user' satisfies Role));
          return { token: s.token, userId: user.userId, expiresAt: s.expiresAt };
        },
      }),
      /** A user by id (404 when unknown): the recipient check of messages.send. */
      get: action({
        params: Type.Object({ userId: UserId }),
        result: User,
        idempotent: true,
        handler: async (_ctx, { userId }) => publicUser(await getUser(userId, 'params.userId')),
      }),
      /** The caller's profile (GET /me): 401 when the token's user does not exist. */
      me: action({
        params: Type.Object({ userId: UserId }),
        result: User,
        idempotent: true,
        handler: async (_ctx, { userId }) => publicUser(await callerOf(userId)),
      }),
      update: action({
        params: Type.Object({ userId: UserId, name: Type.Optional(Name), bio: Type.Optional(Bio) }, { additionalProperties: false }),
        result: User,
        idempotent: true,
        handler: async (_ctx, { userId, name, bio }) => {
          const patch: Partial<UserRow> = {};
          if (name !== undefined) patch.name = name;
          if (bio !== undefined) patch.bio = bio;
          if (Object.keys(patch).length > 0) {
            try {
              await users.update(userId, patch);
            } catch (err) {
              if (isPowerplantError(err, 'PP_ERR_NOT_FOUND')) throw noSession();
              throw err;
            }
          }
          return publicUser(await callerOf(userId));
        },
      }),
      getPreferences: action({
        params: Type.Object({ userId: UserId }),
        result: Preferences,
        idempotent: true,
        handler: async (_ctx, { userId }) => {
          const [, prefs] = await Promise.all([callerOf(userId), d.preferences.get(userId)]);
          return prefs?.value ?? DEFAULT_PREFERENCES;
        },
      }),
      putPreferences: action({
        // Flat (the body's fields next to the caller's id), so a bad field is `params.language`.
        params: Type.Object({ userId: UserId, ...Preferences.properties }, { additionalProperties: false }),
        result: Preferences,
        idempotent: true,
        handler: async (_ctx, { userId, language, currency, newsletter }) => {
          const value = { language, currency, newsletter };
          await callerOf(userId); // nothing stored for a user that does not exist
          await d.preferences.put(userId, value);
          return value;
        },
      }),
    },
  });
}
