/**
 * Calls waiting for a reply, and the ONE timer that expires them.
 *
 * A timer per call (what nats.js `request()` does, plus an Error for the stack) cost more than the
 * call itself in the rpc benchmark: at concurrency 100 the per-call setTimeout/clearTimeout pair
 * and the closure were the top of the profile. Instead:
 *  - the pending map is keyed by a counter (`id`), the id travels in the envelope;
 *  - deadlines go into a hashed timing wheel (Varghese & Lauck): `slotCount` slots of `tickMs`;
 *    one interval timer sweeps the slots that came due. A call that completes is only deleted
 *    from the map; its wheel entry is skipped lazily when its slot is swept (no O(n) removal).
 *
 * A call times out at most `tickMs` late. The map is bounded by `pendingMax` (PP_ERR_BULKHEAD_FULL
 * beyond), the wheel by the map plus the completed-but-not-yet-swept ids of one revolution.
 */
import { invariant, ppError, type PowerplantError } from '../errors/index.js';

interface PendingCall {
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
  deadlineMs: number;
  targetNodeId: string;
  timeoutMs: number;
}

/** Largest id before wrapping: stays a msgpack uint32 (5 bytes at most on the wire). */
const ID_MAX = 0xffff_fffe;

export interface PendingOptions {
  pendingMax: number;
  tickMs: number;
  /** Wheel size; a revolution is tickMs * slotCount. Default 1024 (5 s at 5 ms). */
  slotCount?: number;
  /** Called for each call that timed out (stats). */
  onTimeout?: () => void;
}

export class PendingCalls {
  private readonly map = new Map<number, PendingCall>();
  private readonly slots: number[][];
  private readonly tickMs: number;
  private readonly pendingMax: number;
  private readonly onTimeout: (() => void) | undefined;
  private nextId = 1;
  /** Last tick whose slot has been swept. */
  private sweptTick: number;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(options: PendingOptions) {
    invariant(options.tickMs >= 1 && options.pendingMax >= 1, 'pending: tickMs >= 1 and pendingMax >= 1');
    this.tickMs = options.tickMs;
    this.pendingMax = options.pendingMax;
    this.onTimeout = options.onTimeout;
    const slotCount = options.slotCount ?? 1024;
    this.slots = Array.from({ length: slotCount }, () => []);
    this.sweptTick = Math.floor(performance.now() / this.tickMs);
  }

  full(): boolean {
    return this.map.size >= this.pendingMax;
  }

  fullError(): PowerplantError {
    return ppError('PP_ERR_BULKHEAD_FULL', { message: `transport: ${this.pendingMax} calls already wait for replies (pendingCallsMax)`, retryAfterMs: this.tickMs });
  }

  get size(): number {
    return this.map.size;
  }

  /**
   * Registers a call and returns its id, or throws PP_ERR_BULKHEAD_FULL when the map is full.
   * `resolve`/`reject` are the caller's promise functions.
   */
  add(targetNodeId: string, timeoutMs: number, resolve: (value: unknown) => void, reject: (err: unknown) => void): number {
    if (this.full()) throw this.fullError();
    let id = this.nextId;
    // Skip ids still in use after a wrap (only possible for a call older than 4 billion others).
    while (this.map.has(id)) id = id >= ID_MAX ? 1 : id + 1;
    this.nextId = id >= ID_MAX ? 1 : id + 1;
    const deadlineMs = performance.now() + timeoutMs;
    this.map.set(id, { resolve, reject, deadlineMs, targetNodeId, timeoutMs });
    const tick = Math.ceil(deadlineMs / this.tickMs);
    (this.slots[tick % this.slots.length] as number[]).push(id);
    if (this.timer === undefined) this.start();
    return id;
  }

  /** Settles call `id`; false when it is unknown (already timed out or abandoned: a late reply). */
  settle(id: number, ok: boolean, value: unknown): boolean {
    const call = this.map.get(id);
    if (call === undefined) return false;
    this.map.delete(id);
    if (ok) call.resolve(value);
    else call.reject(value);
    return true;
  }

  /** Rejects every call to `targetNodeId`. O(pending); used when a node is declared dead. */
  abandon(targetNodeId: string, err: PowerplantError): number {
    let n = 0;
    for (const [id, call] of this.map) {
      if (call.targetNodeId !== targetNodeId) continue;
      this.map.delete(id);
      call.reject(err);
      n++;
    }
    return n;
  }

  rejectAll(err: PowerplantError): void {
    const calls = [...this.map.values()];
    this.map.clear();
    for (const call of calls) call.reject(err);
    this.stop();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  private start(): void {
    this.sweptTick = Math.floor(performance.now() / this.tickMs);
    this.timer = setInterval(() => this.sweep(), this.tickMs);
    // A process with only pending calls left should still exit when its caller is done with it.
    this.timer.unref();
  }

  /** Expires calls in every slot that came due since the last sweep. */
  sweep(nowMs: number = performance.now()): void {
    const nowTick = Math.floor(nowMs / this.tickMs);
    const n = this.slots.length;
    // After a long stall (a blocked event loop) every slot is due once: at most one revolution.
    const from = nowTick - this.sweptTick > n ? nowTick - n + 1 : this.sweptTick + 1;
    for (let t = from; t <= nowTick; t++) {
      const slot = this.slots[t % n] as number[];
      let keep = 0;
      for (let i = 0; i < slot.length; i++) {
        const id = slot[i] as number;
        const call = this.map.get(id);
        if (call === undefined) continue;
        if (call.deadlineMs <= nowMs) {
          this.map.delete(id);
          this.onTimeout?.();
          call.reject(ppError('PP_ERR_TIMEOUT', { message: `no reply from node '${call.targetNodeId}' within ${call.timeoutMs} ms`, data: { timeoutMs: call.timeoutMs } }));
        } else {
          slot[keep++] = id; // due in a later revolution
        }
      }
      slot.length = keep;
    }
    this.sweptTick = nowTick;
    if (this.map.size === 0) {
      // Ids of completed calls may remain in slots; they are skipped when met again. Clearing the
      // wheel here keeps it from growing while idle.
      for (const slot of this.slots) slot.length = 0;
      this.stop();
    }
  }
}
