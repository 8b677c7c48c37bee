/**
 * The delivery a handler receives: one attempt at one record. Each delivery carries a
 * generation: an ack or a failure for an older delivery (after ackWait, after redelivery, after
 * the partition moved to another member) is rejected by the member and counted in `lateAcks`,
 * never counted twice. The value is decoded and the abort signal created only when the handler
 * asks for them, so a handler that only forwards bytes pays for neither.
 */
import { ppError } from '../../errors/index.js';
import { ENCODING_BYTES } from '../engines/base.js';
import { decodePayload } from '../codec.js';
import type { Entry } from './entry.js';

export interface Delivery<T = unknown> {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly key: string | undefined;
  readonly id: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
  /** Append time, epoch ms. */
  readonly timestampMs: number;
  /** 1 on the first delivery, 2 on the first redelivery, ... */
  readonly attempt: number;
  /** The message: bytes as published for a Uint8Array, else the decoded msgpack value. */
  readonly value: T;
  /** Aborted when this delivery's ackWait passes (the record is redelivered). */
  readonly signal: AbortSignal;
  /** Acks now (the handler's return is then ignored). False when this delivery is no longer current. */
  ack(): boolean;
  /** Fails this attempt now (redelivery with backoff, or dead letter). False when no longer current. */
  nak(reason?: unknown): boolean;
}

/** Who settled a delivery: the handler's return, an explicit ack()/nak(), or the ackWait timer. */
export type SettledBy = 'return' | 'explicit' | 'timeout';

/** What a delivery needs from its member (the member implements it). */
export interface DeliveryOwner {
  readonly topic: string;
  settle(e: Entry, gen: number, d: DeliveryImpl, err: unknown, by: SettledBy): boolean;
}

const EMPTY_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

export class DeliveryImpl implements Delivery<unknown> {
  readonly #member: DeliveryOwner;
  readonly #entry: Entry;
  readonly #gen: number;
  readonly attempt: number;
  #value: unknown;
  #decoded = false;
  #ctl: AbortController | undefined;
  #abortReason: Error | undefined;
  settled = false;

  constructor(member: DeliveryOwner, entry: Entry, gen: number) {
    this.#member = member;
    this.#entry = entry;
    this.#gen = gen;
    this.attempt = entry.attempts;
  }

  get topic(): string {
    return this.#member.topic;
  }
  get partition(): number {
    return this.#entry.rec.partition;
  }
  get offset(): number {
    return this.#entry.rec.offset;
  }
  get key(): string | undefined {
    return this.#entry.rec.key;
  }
  get id(): string | undefined {
    return this.#entry.rec.id;
  }
  get headers(): Readonly<Record<string, string>> {
    return this.#entry.rec.headers ?? EMPTY_HEADERS;
  }
  get timestampMs(): number {
    return this.#entry.rec.timestampMs;
  }
  /** Decoded on first access: a handler that only forwards bytes pays nothing. */
  get value(): unknown {
    if (!this.#decoded) {
      const r = this.#entry.rec;
      this.#value = r.encoding === ENCODING_BYTES ? r.payload : decodePayload(r.payload);
      this.#decoded = true;
    }
    return this.#value;
  }
  /** Created on first access, so deliveries that never look at it allocate no controller. */
  get signal(): AbortSignal {
    if (this.#ctl === undefined) {
      this.#ctl = new AbortController();
      if (this.#abortReason !== undefined) this.#ctl.abort(this.#abortReason);
    }
    return this.#ctl.signal;
  }
  abort(reason: string): void {
    this.#abortReason = ppError('PP_ERR_TIMEOUT', { message: reason });
    this.#ctl?.abort(this.#abortReason);
  }
  ack(): boolean {
    return this.#member.settle(this.#entry, this.#gen, this, undefined, 'explicit');
  }
  nak(reason?: unknown): boolean {
    return this.#member.settle(this.#entry, this.#gen, this, reason ?? new Error('nak'), 'explicit');
  }
}
