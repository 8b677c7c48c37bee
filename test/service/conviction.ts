/**
 * Watches a node's failure detector to measure WHEN it convicted a peer, on the detector's own
 * clock: the silence since the last heartbeat it received from that peer, and the time since the
 * detector's previous evaluation. Test-only instrumentation of the public `detector` field.
 *
 * Why from the last heartbeat received and not from a kill: between a kill and the peer's last
 * heartbeat lie up to heartbeatIntervalMs plus delivery delay, which say nothing about the
 * detector. The detector's bound is stated from the last heartbeat: a silent node is dead at the
 * first evaluation at which it has been silent for deadAfterMs (earlier if phi crosses deadPhi), so
 * `silentMs - sincePreviousCheckMs < deadAfterMs` must hold exactly, whatever the machine's load:
 * the evaluation before the conviction saw less than deadAfterMs of silence.
 */
import type { ServiceNode } from '../../src/service/index.js';

export interface Conviction {
  /** Silence of the peer when it was dropped, ms since the last heartbeat received from it. */
  silentMs: number;
  /** Time since the detector's previous evaluation, ms (checkIntervalMs plus timer lateness). */
  sincePreviousCheckMs: number;
}

export function watchConviction(node: ServiceNode, peerId: string): { result: () => Conviction | undefined } {
  const detector = node.detector;
  const check = detector.check.bind(detector);
  let previousMs: number | undefined;
  let result: Conviction | undefined;
  detector.check = (nowMs: number = performance.now()): void => {
    const lastHeartbeatMs = detector.has(peerId) ? detector.stats(peerId).lastHeartbeatMs : undefined;
    const known = node.registry.nodes.has(peerId);
    check(nowMs);
    if (result === undefined && known && lastHeartbeatMs !== undefined && previousMs !== undefined && !node.registry.nodes.has(peerId)) {
      result = { silentMs: nowMs - lastHeartbeatMs, sincePreviousCheckMs: nowMs - previousMs };
    }
    previousMs = nowMs;
  };
  return { result: () => result };
}
