/**
 * Discovery and membership: which nodes exist, what they offer, and whether they are alive.
 *
 * Over the transport's broadcast topics `$sys.announce|heartbeat|leave|discover`: a node announces
 * its services on start (and when asked), heartbeats every heartbeatIntervalMs, and says leave on
 * stop. Heartbeats feed the phi-accrual failure detector from resilience/, checked every
 * checkIntervalMs: 'suspect' nodes are avoided by the balancers, 'dead' ones leave the registry and
 * their pending calls fail at once (PP_ERR_UNAVAILABLE) so they can be retried elsewhere. A node is
 * dead at most deadAfterMs + checkIntervalMs after its last heartbeat.
 */
import { Type } from '@sinclair/typebox';
import { BALANCER_NAMES } from '../balance/index.js';
import { ppError } from '../errors/index.js';
import { FailureDetector, type FailureDetectorOptions, type NodeStatusChange } from '../resilience/index.js';
import type { Unsubscribe } from '../transport/index.js';
import type { NodeCore } from './core.js';
import type { NodeInfo, ServiceDescriptor } from './registry.js';
import type { NodeMetrics } from './status.js';
import type { AnyAction, ServiceDef } from './types.js';
import { compileValidator } from './validate.js';

interface AnnounceMsg { nodeId: string; instanceId: string; services: ServiceDescriptor[] }
interface BeatMsg { nodeId: string; instanceId: string }

/**
 * Announcements come from other processes (other versions, other bugs): their shape is checked
 * with a compiled schema before anything reaches the registry; a bad one is dropped and logged.
 */
const ANNOUNCE_SCHEMA = Type.Object({
  nodeId: Type.String({ minLength: 1, maxLength: 128 }),
  instanceId: Type.String({ minLength: 1, maxLength: 64 }),
  services: Type.Array(Type.Object({
    name: Type.String({ maxLength: 64 }),
    version: Type.Integer(),
    actions: Type.Array(Type.Object({
      name: Type.String({ maxLength: 129 }),
      idempotent: Type.Boolean(),
      balancer: Type.Optional(Type.Union(BALANCER_NAMES.map((n) => Type.Literal(n)))),
      keyParam: Type.Optional(Type.String({ maxLength: 128 })),
      timeoutMs: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    }), { maxItems: 10_000 }),
    events: Type.Array(Type.Object({ topic: Type.String({ maxLength: 256 }), group: Type.String({ maxLength: 128 }) }), { maxItems: 10_000 }),
  }), { maxItems: 1_000 }),
});
const announceValidator = compileValidator(ANNOUNCE_SCHEMA, 'announce');

const SYS_ANNOUNCE = '$sys.announce';
const SYS_HEARTBEAT = '$sys.heartbeat';
const SYS_LEAVE = '$sys.leave';
const SYS_DISCOVER = '$sys.discover';

/** What a node announces about its services. */
export function describeServices(services: readonly ServiceDef<string, Record<string, AnyAction>>[]): ServiceDescriptor[] {
  return services.map((svc) => ({
    name: svc.name,
    version: svc.version,
    actions: Object.entries(svc.actions).map(([a, def]) => ({
      name: `${svc.name}.${a}`, idempotent: def.idempotent ?? false,
      ...(def.balancer === undefined ? {} : { balancer: def.balancer }),
      ...(def.keyParam === undefined ? {} : { keyParam: def.keyParam }),
      ...(def.timeoutMs === undefined ? {} : { timeoutMs: def.timeoutMs }),
    })),
    events: Object.entries(svc.events).map(([topic, def]) => ({ topic, group: def.group ?? svc.name })),
  }));
}

export interface MembershipOptions {
  heartbeatIntervalMs: number;
  checkIntervalMs: number;
  detector: Omit<FailureDetectorOptions, 'onStatusChange' | 'clock'> | undefined;
  /** A node announced actions: calls waiting for them to be discovered may proceed. */
  onRoutesChanged: () => void;
}

export class Membership {
  readonly detector: FailureDetector;
  private readonly heartbeatIntervalMs: number;
  private readonly checkIntervalMs: number;
  private readonly onRoutesChanged: () => void;
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  private checkTimer: ReturnType<typeof setInterval> | undefined;
  private lastDiscoverMs = -Infinity;

  constructor(
    private readonly core: NodeCore,
    private readonly metrics: NodeMetrics,
    private readonly services: readonly ServiceDef<string, Record<string, AnyAction>>[],
    options: MembershipOptions,
  ) {
    this.heartbeatIntervalMs = options.heartbeatIntervalMs;
    this.checkIntervalMs = options.checkIntervalMs;
    this.onRoutesChanged = options.onRoutesChanged;
    this.detector = new FailureDetector({
      deadAfterMs: 5 * this.heartbeatIntervalMs,
      firstHeartbeatEstimateMs: this.heartbeatIntervalMs,
      ...options.detector,
      onStatusChange: (change) => this.onNodeStatus(change),
    });
  }

  /** Listens to the other nodes' announcements, heartbeats, leaves and requests to announce. */
  subscribe(): Unsubscribe[] {
    const t = this.core.transport;
    return [
      t.subscribe(SYS_ANNOUNCE, (p) => this.onAnnounce(p)),
      t.subscribe(SYS_HEARTBEAT, (p) => this.onHeartbeat(p)),
      t.subscribe(SYS_LEAVE, (p) => this.onLeave(p)),
      t.subscribe(SYS_DISCOVER, (p) => this.onDiscover(p)),
    ];
  }

  /** Asks the other nodes to announce themselves. */
  askToAnnounce(): void {
    this.core.transport.publish(SYS_DISCOVER, { nodeId: this.core.nodeId });
  }

  /** Puts this node's own services in the registry (calls to them are then served here). */
  registerSelf(): void {
    const { core } = this;
    core.registry.upsert({ nodeId: core.nodeId, instanceId: core.instanceId, services: describeServices(this.services), local: true, status: 'alive' });
  }

  /** Announces this node, then heartbeats and runs the failure detector until `leave()`. */
  join(): void {
    this.announce();
    const { core } = this;
    this.heartbeatTimer = setInterval(() => core.transport.publish(SYS_HEARTBEAT, { nodeId: core.nodeId, instanceId: core.instanceId }), this.heartbeatIntervalMs);
    this.checkTimer = setInterval(() => this.detector.check(), this.checkIntervalMs);
    this.heartbeatTimer.unref();
    this.checkTimer.unref();
  }

  /** Stops heartbeating and tells the others this node leaves. */
  leave(): void {
    clearInterval(this.heartbeatTimer);
    clearInterval(this.checkTimer);
    this.core.transport.publish(SYS_LEAVE, { nodeId: this.core.nodeId, instanceId: this.core.instanceId });
  }

  private announce(): void {
    const msg: AnnounceMsg = { nodeId: this.core.nodeId, instanceId: this.core.instanceId, services: describeServices(this.services) };
    this.core.transport.publish(SYS_ANNOUNCE, msg);
  }

  private onAnnounce(p: unknown): void {
    const { core } = this;
    const invalid = announceValidator.check(p);
    if (invalid !== undefined) {
      core.logger.warn({ field: invalid.field }, 'malformed announcement dropped');
      return;
    }
    const msg = p as AnnounceMsg;
    if (msg.nodeId === core.nodeId || !core.listening()) return;
    const known = core.registry.nodes.get(msg.nodeId);
    if (known !== undefined && known.instanceId !== msg.instanceId) this.dropNode(msg.nodeId, 'restarted');
    const info: NodeInfo = { nodeId: msg.nodeId, instanceId: msg.instanceId, services: msg.services, local: false, status: 'alive' };
    const outcome = core.registry.upsert(info);
    if (outcome === 'full') {
      core.logger.warn({ nodeId: msg.nodeId }, 'registry full (nodesMax): node ignored');
      return;
    }
    core.suspects.delete(msg.nodeId);
    this.detector.heartbeat(msg.nodeId);
    this.onRoutesChanged();
    if (outcome === 'added') core.logger.info({ nodeId: msg.nodeId, services: msg.services.map((s) => s.name) }, 'node joined');
  }

  private onHeartbeat(p: unknown): void {
    const { core } = this;
    const msg = p as Partial<BeatMsg> | null;
    if (msg === null || typeof msg !== 'object' || typeof msg.nodeId !== 'string' || msg.nodeId === core.nodeId || !core.listening()) return;
    const known = core.registry.nodes.get(msg.nodeId);
    if (known === undefined || known.instanceId !== msg.instanceId) {
      // We missed its announcement (joined later, or it was declared dead and came back): ask.
      const now = performance.now();
      if (now - this.lastDiscoverMs >= this.heartbeatIntervalMs) {
        this.lastDiscoverMs = now;
        this.askToAnnounce();
      }
      return;
    }
    this.detector.heartbeat(msg.nodeId);
  }

  private onLeave(p: unknown): void {
    const msg = p as Partial<BeatMsg> | null;
    if (msg === null || typeof msg !== 'object' || typeof msg.nodeId !== 'string' || msg.nodeId === this.core.nodeId) return;
    const known = this.core.registry.nodes.get(msg.nodeId);
    if (known !== undefined && known.instanceId === msg.instanceId) this.dropNode(msg.nodeId, 'left');
  }

  private onDiscover(p: unknown): void {
    const msg = p as { nodeId?: unknown } | null;
    if (msg === null || typeof msg !== 'object' || msg.nodeId === this.core.nodeId || this.core.state !== 'running') return;
    this.announce();
  }

  private onNodeStatus(change: NodeStatusChange): void {
    const { core } = this;
    const info = core.registry.nodes.get(change.nodeId);
    if (info === undefined) return;
    if (change.to === 'dead') {
      this.dropNode(change.nodeId, 'dead');
      core.logger.warn({ nodeId: change.nodeId, silentMs: Math.round(change.silentMs), phi: change.phi }, 'node declared dead');
    } else if (change.to === 'suspect') {
      info.status = 'suspect';
      core.suspects.add(change.nodeId);
      core.logger.info({ nodeId: change.nodeId, silentMs: Math.round(change.silentMs) }, 'node suspect');
    } else {
      info.status = 'alive';
      core.suspects.delete(change.nodeId);
    }
  }

  private dropNode(nodeId: string, reason: 'dead' | 'left' | 'restarted'): void {
    const { core } = this;
    if (!core.registry.remove(nodeId)) return;
    this.detector.remove(nodeId);
    core.suspects.delete(nodeId);
    this.metrics.nodesLeft.labels(reason).inc();
    // A dead or restarted node will never answer the calls it had: fail them now so they can be
    // retried on another instance instead of waiting for their deadlines. A node that LEFT is
    // draining: it still answers what it accepted, so its calls are left to finish.
    if (reason !== 'left') core.transport.abandonCallsTo(nodeId, ppError('PP_ERR_UNAVAILABLE', { message: `node '${nodeId}' ${reason}`, data: { nodeId } }));
    if (reason !== 'dead') core.logger.info({ nodeId, reason }, 'node left the registry');
  }
}
