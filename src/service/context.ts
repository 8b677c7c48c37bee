/**
 * The context handed to action handlers, event handlers, queue consumers and lifecycle hooks
 * (`Context` in types.ts): who and what is being handled, the deadline, the logger, and the way out
 * (calls and events) through the node's caller.
 */
import { Deadline } from '../resilience/index.js';
import type { Logger } from '../observe/index.js';
import type { CallOptions, CheckActionName, CheckTopic, Context, ParamsOf, PayloadOf, ResultOf } from './types.js';

/** What a context calls through: the caller side of its node (caller.ts). */
export interface ContextHost {
  readonly nodeId: string;
  readonly logger: Logger;
  /** A call made by a handler: `parent` caps its deadline and lends its request id. */
  invoke(name: string, params: unknown, opts: CallOptions | undefined, parent: CallContext | undefined): Promise<unknown>;
  emitDynamic(topic: string, payload: unknown): void;
  broadcastDynamic(topic: string, payload: unknown): void;
}

/**
 * A class so the per-request cost is its fields only (one is made per request served); the
 * `Deadline` object is made only when a handler asks for it.
 */
export class CallContext implements Context {
  private deadlineObj: Deadline | undefined;
  constructor(
    private readonly host: ContextHost,
    readonly name: string,
    readonly deadlineAtMs: number,
    readonly requestId: string | undefined,
    readonly callerNodeId: string | undefined,
  ) {}

  get nodeId(): string {
    return this.host.nodeId;
  }

  get logger(): Logger {
    return this.host.logger;
  }

  get deadline(): Deadline {
    this.deadlineObj ??= new Deadline(this.deadlineAtMs);
    return this.deadlineObj;
  }

  call<N extends string>(name: N & CheckActionName<N>, params: ParamsOf<N>, opts?: CallOptions): Promise<ResultOf<N>> {
    return this.host.invoke(name, params, opts, this) as Promise<ResultOf<N>>;
  }

  callDynamic(name: string, params: unknown, opts?: CallOptions): Promise<unknown> {
    return this.host.invoke(name, params, opts, this);
  }

  emit<T extends string>(topic: T & CheckTopic<T>, payload: PayloadOf<T>): void {
    this.host.emitDynamic(topic, payload);
  }

  broadcast<T extends string>(topic: T & CheckTopic<T>, payload: PayloadOf<T>): void {
    this.host.broadcastDynamic(topic, payload);
  }

  emitDynamic(topic: string, payload: unknown): void {
    this.host.emitDynamic(topic, payload);
  }

  broadcastDynamic(topic: string, payload: unknown): void {
    this.host.broadcastDynamic(topic, payload);
  }
}
