/**
 * Fault test with real NATS: three node processes serve an idempotent action; a client makes a
 * steady stream of calls; one node is SIGKILLed mid-stream. Checks: no call is lost (retries on,
 * on another instance), calls fail over to the survivors, and the registry drops the dead node
 * within the detector's bound, measured from the last heartbeat the client received from it (see
 * conviction.ts): at the first evaluation after deadAfterMs of silence at the latest, i.e. within
 * deadAfterMs + the time between two evaluations (checkIntervalMs, plus whatever the loaded
 * machine delayed that timer: measured, not guessed). Children are killed in afterAll whatever happens.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { isPowerplantError } from '../../src/errors/index.js';
import { createNode } from '../../src/service/index.js';
import { needEngine } from '../helpers/engines.js';
import { eventually } from '../transport/conformance.js';
import { watchConviction } from './conviction.js';
import { FAULT_TIMING } from './fault-config.js';

const run = await needEngine('nats');
const here = dirname(fileURLToPath(import.meta.url));

const children: ChildProcess[] = [];
const killAll = (): void => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
};
process.on('exit', killAll);

function startNode(namespace: string, nodeId: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'fault-node.ts'), namespace, nodeId], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve(child);
    });
    child.once('exit', (code, signal) => reject(new Error(`${nodeId} exited early (${code ?? signal})`)));
  });
}

describe.runIf(run)('fault: SIGKILL one of three nodes under a steady stream of calls (real NATS)', () => {
  afterAll(() => {
    killAll();
  });

  it('loses no idempotent call, fails over, and drops the dead node within the detector bound', async () => {
    const ns = `fault${process.pid}${Date.now().toString(36)}`;
    const ids = ['n1', 'n2', 'n3'];
    const procs = await Promise.all(ids.map((id) => startNode(ns, id)));
    const client = createNode({
      nodeId: 'client', namespace: ns, transport: 'nats://127.0.0.1:4222', logger: false, ...FAULT_TIMING,
      // Retries on: a call caught on the dead node times out after one attempt budget (or fails at
      // once when the node is declared dead) and is retried on another instance.
      call: { timeoutMs: 10_000, attemptTimeoutMs: 400, attemptsMax: 6, retryBudget: false, retryBaseDelayMs: 5, retryDelayMsMax: 50 },
    });
    await client.start();
    try {
      await eventually(() => (client.registry.routes.get('tfault.work')?.set.size ?? 0) === 3, 'three instances discovered', 20_000);

      const servedBy = new Map<string, number>();
      const afterDrop = new Map<string, number>();
      const errors: unknown[] = [];
      let seq = 0;
      let ok = 0;
      let stop = false;
      let dropped = false;
      const worker = async (): Promise<void> => {
        while (!stop) {
          const mine = seq++;
          try {
            const r = (await client.callDynamic('tfault.work', { seq: mine })) as { seq: number; by: string };
            expect(r.seq).toBe(mine);
            servedBy.set(r.by, (servedBy.get(r.by) ?? 0) + 1);
            if (dropped) afterDrop.set(r.by, (afterDrop.get(r.by) ?? 0) + 1);
            ok++;
          } catch (err) {
            errors.push(isPowerplantError(err) ? err.toJSON() : String(err));
          }
        }
      };
      const workers = Array.from({ length: 8 }, worker);

      await eventually(() => ['n1', 'n2', 'n3'].every((id) => (servedBy.get(id) ?? 0) >= 20), 'every node serves before the kill', 20_000);
      const victim = procs[1]!;
      const conviction = watchConviction(client, 'n2');
      const killMs = performance.now();
      victim.kill('SIGKILL');
      await eventually(() => !client.registry.nodes.has('n2'), 'n2 dropped from the registry', 20_000);
      const detectionMs = performance.now() - killMs;
      dropped = true;
      const okAtDrop = ok;
      await eventually(() => ok >= okAtDrop + 200, 'calls keep flowing after the drop', 20_000);
      stop = true;
      await Promise.all(workers);

      expect(errors).toEqual([]);
      expect(ok).toBe(seq);
      // After the drop, only the survivors serve.
      expect(afterDrop.get('n2') ?? 0).toBe(0);
      expect((afterDrop.get('n1') ?? 0) + (afterDrop.get('n3') ?? 0)).toBeGreaterThanOrEqual(200);
      const c = conviction.result();
      expect(c, 'n2 was dropped by a detector evaluation').toBeDefined();
      const { deadAfterMs } = FAULT_TIMING.detector;
      console.log(`fault: n2 dropped ${detectionMs.toFixed(0)} ms after SIGKILL, ${c!.silentMs.toFixed(0)} ms after its last heartbeat `
        + `(bound: deadAfterMs ${deadAfterMs} + ${c!.sincePreviousCheckMs.toFixed(0)} ms since the previous evaluation, checkIntervalMs ${FAULT_TIMING.checkIntervalMs}); `
        + `${ok} calls, 0 lost; retries ${/pp_call_retries_total\{action="tfault.work"\} (\d+)/.exec(client.metrics.render())?.[1]}`);
      // The bound, exactly: the evaluation before the conviction had seen less than deadAfterMs of silence.
      expect(c!.silentMs - c!.sincePreviousCheckMs).toBeLessThan(deadAfterMs);
      expect(c!.silentMs).toBeGreaterThan(0);
      expect(client.metrics.render()).toMatch(/pp_registry_nodes_left_total\{reason="dead"\} 1/);
    } finally {
      await client.stop();
      killAll();
    }
  });
});
