/**
 * The peer's simulated card-payment provider: the stand-in for a remote provider's API, written
 * for the peer (not imported from examples/shop) with the behaviour CONTRACT.md's PP_PAYMENTS_*
 * give the shop's:
 *  - every call is idempotent by payment id (authorizing twice returns the first authorization;
 *    capturing or voiding twice is a no-op);
 *  - every call takes `latencyMs`; some time out before doing anything (`timeoutRate`), some lose
 *    their answer after acting (`crashRate`: the record is changed, the caller sees an error and a
 *    retry finds the record); some authorizations are declined (`declineRate`);
 *  - a void of a payment never authorized is recorded, so an authorization arriving after it is
 *    refused.
 * Which calls time out, crash or decline is the first 4 bytes of sha256(`${seed}:${paymentId}:
 * ${op}:${n}`) / 2^32 compared with the rate (op e.g. `authorize:timeout`, n the call's number for
 * that payment and op), so a run is reproducible from its seed.
 *
 * The provider's records live in this process's memory (bounded: the oldest payments are
 * forgotten), as a remote provider's would live in its own database: the peer's SQLite holds only
 * the shop's side of a checkout.
 */
import { createHash } from 'node:crypto';

export interface PaymentsConfig {
  readonly latencyMs: number;
  readonly declineRate: number;
  readonly timeoutRate: number;
  readonly crashRate: number;
  readonly seed: number;
}

export const DEFAULT_PAYMENTS: PaymentsConfig = { latencyMs: 0, declineRate: 0, timeoutRate: 0, crashRate: 0, seed: 1 };

export type PaymentState = 'authorized' | 'declined' | 'captured' | 'voided';

/** The call timed out: the provider did nothing. */
export class ProviderTimeout extends Error {}
/** The provider acted, but its answer was lost (connection reset). */
export class ProviderLost extends Error {}
/** The authorization was declined (or the payment was voided before it). */
export class PaymentDeclined extends Error {}
/** The call does not fit the payment's state (capturing a voided payment, voiding a captured one). */
export class PaymentStateError extends Error {}

/** Payments (and call counters) kept in memory; beyond it the oldest are forgotten. */
const KEPT_MAX = 100_000;

const RATES = ['declineRate', 'timeoutRate', 'crashRate'] as const;

/** The configuration with defaults, checked (a RangeError names the bad option). */
export function paymentsConfig(p: Partial<PaymentsConfig> = {}): PaymentsConfig {
  const c = { ...DEFAULT_PAYMENTS, ...p };
  if (!Number.isInteger(c.latencyMs) || c.latencyMs < 0 || c.latencyMs > 60_000) throw new RangeError(`payments.latencyMs must be an integer in [0, 60000] (got ${c.latencyMs})`);
  if (!Number.isInteger(c.seed) || c.seed < 0 || c.seed > 2 ** 31 - 1) throw new RangeError(`payments.seed must be an integer in [0, 2^31-1] (got ${c.seed})`);
  for (const k of RATES) {
    if (!Number.isFinite(c[k]) || c[k] < 0 || c[k] > 1) throw new RangeError(`payments.${k} must be a number in [0, 1] (got ${c[k]})`);
  }
  return c;
}

/** PP_PAYMENTS_LATENCY_MS, _DECLINE_RATE, _TIMEOUT_RATE, _CRASH_RATE, _SEED (unset ones: the defaults). */
export function paymentsFromEnv(env: NodeJS.ProcessEnv = process.env): PaymentsConfig {
  const num = (k: string): number | undefined => {
    const v = env[k];
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (Number.isNaN(n)) throw new RangeError(`${k} must be a number (got '${v}')`);
    return n;
  };
  const p: { -readonly [K in keyof PaymentsConfig]?: number } = {};
  const set = (k: keyof PaymentsConfig, env: string): void => {
    const n = num(env);
    if (n !== undefined) p[k] = n;
  };
  set('latencyMs', 'PP_PAYMENTS_LATENCY_MS');
  set('declineRate', 'PP_PAYMENTS_DECLINE_RATE');
  set('timeoutRate', 'PP_PAYMENTS_TIMEOUT_RATE');
  set('crashRate', 'PP_PAYMENTS_CRASH_RATE');
  set('seed', 'PP_PAYMENTS_SEED');
  return paymentsConfig(p);
}

/** Map.set that forgets the oldest entry first when the map is full. */
function setBounded<K, V>(m: Map<K, V>, k: K, v: V): void {
  if (!m.has(k) && m.size >= KEPT_MAX) m.delete(m.keys().next().value as K);
  m.set(k, v);
}

export class SimulatedProvider {
  private readonly payments = new Map<string, { state: PaymentState; amountCents: number }>();
  private readonly calls = new Map<string, number>();

  constructor(readonly config: PaymentsConfig) {}

  /** Uniform in [0, 1): the draw of this (payment, op)'s next call. */
  private draw(paymentId: string, op: string): number {
    const k = `${paymentId}:${op}`;
    const n = (this.calls.get(k) ?? 0) + 1;
    setBounded(this.calls, k, n);
    return createHash('sha256').update(`${this.config.seed}:${k}:${n}`).digest().readUInt32BE(0) / 2 ** 32;
  }

  /** The round trip: latency, then maybe a timeout (nothing done); says whether the answer will be lost. */
  private async call(paymentId: string, op: string): Promise<{ lose: boolean }> {
    if (this.config.latencyMs > 0) await new Promise((r) => setTimeout(r, this.config.latencyMs));
    if (this.draw(paymentId, `${op}:timeout`) < this.config.timeoutRate) throw new ProviderTimeout(`payment provider: ${op} timed out`);
    return { lose: this.draw(paymentId, `${op}:crash`) < this.config.crashRate };
  }

  async authorize(paymentId: string, amountCents: number): Promise<void> {
    const { lose } = await this.call(paymentId, 'authorize');
    let p = this.payments.get(paymentId);
    if (p === undefined) {
      const declined = this.draw(paymentId, 'authorize:decline') < this.config.declineRate;
      p = { state: declined ? 'declined' : 'authorized', amountCents };
      setBounded(this.payments, paymentId, p);
    }
    if (lose) throw new ProviderLost('payment provider: connection reset during authorize');
    if (p.state === 'declined') throw new PaymentDeclined('the card was declined');
    if (p.state === 'voided') throw new PaymentDeclined('this payment was voided');
  }

  async capture(paymentId: string): Promise<void> {
    const { lose } = await this.call(paymentId, 'capture');
    const p = this.payments.get(paymentId);
    if (p?.state === 'authorized') p.state = 'captured';
    if (p?.state !== 'captured') throw new PaymentStateError(`payment ${paymentId} is ${p?.state ?? 'unknown'}, it cannot be captured`);
    if (lose) throw new ProviderLost('payment provider: connection reset during capture');
  }

  /** Voids the payment (recording the void if it was never authorized); the state it ends in. */
  async void(paymentId: string): Promise<PaymentState> {
    const { lose } = await this.call(paymentId, 'void');
    const p = this.payments.get(paymentId);
    if (p === undefined) setBounded(this.payments, paymentId, { state: 'voided', amountCents: 0 });
    else if (p.state === 'authorized') p.state = 'voided';
    if (lose) throw new ProviderLost('payment provider: connection reset during void');
    return p?.state ?? 'voided';
  }
}
