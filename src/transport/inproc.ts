/**
 * In-process transport (`inproc://<bus>`): nodes in one process share a bus by name and talk by
 * direct function calls. Zero serialization: params, results and events are passed BY REFERENCE,
 * so neither side may mutate what it sent or received (the same contract as a frozen message).
 *
 * Semantics match the NATS transport where the conformance suite checks them: deadlines travel as
 * a remaining duration, errors as catalogue errors (non-catalogue errors are the node's business:
 * it converts them before they reach a transport), a dead target fails retryably, event delivery
 * is asynchronous (a microtask later, never inside `publish`), one member per group.
 */
import { ppError, requireArg, type PowerplantError } from '../errors/index.js';
import {
  DEFAULT_PAYLOAD_BYTES_MAX, DEFAULT_PENDING_CALLS_MAX, TRANSPORT_RENAMED, isToken, isTopic, newStats,
  type CallMeta, type EventHandler, type RequestHandler, type Transport, type TransportOptions, type TransportStats, type Unsubscribe,
} from './base.js';
import { renamedOptions } from '../util/index.js';
import { PendingCalls } from './pending.js';

interface Subscriber {
  handler: EventHandler;
  transport: InprocTransport;
}

interface Group {
  members: Subscriber[];
  next: number;
}

interface TopicSubs {
  plain: Subscriber[];
  groups: Map<string, Group>;
}

/** One named bus: the nodes on it and the topic subscriptions. */
class Bus {
  readonly nodes = new Map<string, InprocTransport>();
  readonly topics = new Map<string, TopicSubs>();
}

const buses = new Map<string, Bus>();

function busFor(name: string): Bus {
  let bus = buses.get(name);
  if (bus === undefined) {
    bus = new Bus();
    buses.set(name, bus);
  }
  return bus;
}

export class InprocTransport implements Transport {
  readonly kind = 'inproc' as const;
  readonly nodeId: string;
  readonly namespace: string;
  readonly payloadBytesMax: number;
  private readonly bus: Bus;
  private readonly pending: PendingCalls;
  private readonly counters: TransportStats = newStats();
  private handler: RequestHandler | undefined;
  private connected = false;
  private closed = false;
  private readonly unsubscribers = new Set<Unsubscribe>();

  constructor(busName: string, given: TransportOptions) {
    const options = renamedOptions(given, TRANSPORT_RENAMED);
    const namespace = options.namespace ?? 'default';
    requireArg(isToken(options.nodeId), 'nodeId', 'must be 1-128 letters, digits, "_" or "-"');
    requireArg(isToken(namespace), 'namespace', 'must be 1-128 letters, digits, "_" or "-"');
    this.nodeId = options.nodeId;
    this.namespace = namespace;
    this.payloadBytesMax = options.payloadBytesMax ?? DEFAULT_PAYLOAD_BYTES_MAX;
    // The namespace splits one bus exactly as it splits one NATS server.
    this.bus = busFor(`${busName}/${namespace}`);
    this.pending = new PendingCalls({
      pendingMax: options.pendingCallsMax ?? DEFAULT_PENDING_CALLS_MAX,
      tickMs: options.timerTickMs ?? 5,
      onTimeout: () => this.counters.timeouts++,
    });
  }

  connect(): Promise<void> {
    if (this.closed) return Promise.reject(ppError('PP_ERR_SHUTTING_DOWN', { message: 'transport is closed' }));
    requireArg(!this.bus.nodes.has(this.nodeId) || this.bus.nodes.get(this.nodeId) === this, 'nodeId', `node '${this.nodeId}' is already on this bus`);
    this.bus.nodes.set(this.nodeId, this);
    this.connected = true;
    return Promise.resolve();
  }

  serve(handler: RequestHandler): void {
    this.handler = handler;
  }

  request(targetNodeId: string, action: string, params: unknown, timeoutMs: number, meta?: CallMeta): Promise<unknown> {
    if (!this.connected) return Promise.reject(ppError('PP_ERR_SHUTTING_DOWN', { message: `transport of '${this.nodeId}' is not connected` }));
    const target = this.bus.nodes.get(targetNodeId);
    const handler = target?.handler;
    if (target === undefined || handler === undefined) {
      return Promise.reject(ppError('PP_ERR_UNAVAILABLE', { message: `node '${targetNodeId}' is not on the bus`, data: { nodeId: targetNodeId } }));
    }
    if (timeoutMs <= 0) return Promise.reject(ppError('PP_ERR_TIMEOUT', { message: 'deadline already passed before sending' }));
    if (this.pending.full()) return Promise.reject(this.pending.fullError());
    this.counters.requestsSent++;
    this.counters.framesSent++;
    return new Promise<unknown>((resolve, reject) => {
      const id = this.pending.add(targetNodeId, timeoutMs, resolve, reject);
      target.counters.requestsReceived++;
      target.counters.framesReceived++;
      let served: Promise<unknown>;
      try {
        served = handler(action, params, timeoutMs, meta);
      } catch (err) {
        served = Promise.reject(err);
      }
      served.then(
        (value) => this.onReply(id, true, value),
        (err: unknown) => this.onReply(id, false, err),
      );
    });
  }

  private onReply(id: number, ok: boolean, value: unknown): void {
    if (this.pending.settle(id, ok, value)) this.counters.repliesReceived++;
    else this.counters.droppedLateReplies++;
  }

  publish(topic: string, payload: unknown): void {
    requireArg(isTopic(topic), 'topic', 'must be dot-separated tokens of letters, digits, "_", "$" or "-"');
    if (!this.connected) return;
    this.counters.eventsPublished++;
    const subs = this.bus.topics.get(topic);
    if (subs === undefined) return;
    // Pick the receivers now (membership at publish time, as a NATS server does), deliver later.
    const receivers: Subscriber[] = [...subs.plain];
    for (const group of subs.groups.values()) {
      if (group.members.length === 0) continue;
      group.next = group.next % group.members.length;
      receivers.push(group.members[group.next] as Subscriber);
      group.next++;
    }
    queueMicrotask(() => {
      for (const sub of receivers) sub.transport.deliver(sub.handler, payload, topic);
    });
  }

  private deliver(handler: EventHandler, payload: unknown, topic: string): void {
    if (!this.connected) return;
    this.counters.eventsReceived++;
    this.counters.framesReceived++;
    try {
      handler(payload, topic);
    } catch {
      this.counters.eventHandlerErrors++;
    }
  }

  subscribe(topic: string, handler: EventHandler, group?: string): Unsubscribe {
    requireArg(isTopic(topic), 'topic', 'must be dot-separated tokens of letters, digits, "_", "$" or "-"');
    requireArg(group === undefined || isToken(group), 'group', 'must be 1-128 letters, digits, "_" or "-"');
    let subs = this.bus.topics.get(topic);
    if (subs === undefined) {
      subs = { plain: [], groups: new Map() };
      this.bus.topics.set(topic, subs);
    }
    const sub: Subscriber = { handler, transport: this };
    let list: Subscriber[];
    if (group === undefined) {
      list = subs.plain;
    } else {
      let g = subs.groups.get(group);
      if (g === undefined) {
        g = { members: [], next: 0 };
        subs.groups.set(group, g);
      }
      list = g.members;
    }
    list.push(sub);
    const unsubscribe = (): void => {
      const i = list.indexOf(sub);
      if (i >= 0) list.splice(i, 1);
      this.unsubscribers.delete(unsubscribe);
    };
    this.unsubscribers.add(unsubscribe);
    return unsubscribe;
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  abandonCallsTo(nodeId: string, err: PowerplantError): number {
    return this.pending.abandon(nodeId, err);
  }

  stats(): TransportStats {
    return { ...this.counters, pendingCalls: this.pending.size };
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.connected = false;
    for (const unsubscribe of [...this.unsubscribers]) unsubscribe();
    if (this.bus.nodes.get(this.nodeId) === this) this.bus.nodes.delete(this.nodeId);
    this.handler = undefined;
    this.pending.rejectAll(ppError('PP_ERR_SHUTTING_DOWN', { message: `transport of '${this.nodeId}' closed` }));
    return Promise.resolve();
  }
}
