/** Failure-detection timing shared by the fault test and its node processes. */
export const FAULT_TIMING = {
  heartbeatIntervalMs: 200,
  checkIntervalMs: 50,
  // stdDevMsMin: phi alone convicts a node only after ~1.1 s of silence, so a process stalled by
  // the shared machine's load is not declared dead; the hard bound stays deadAfterMs.
  detector: { deadAfterMs: 1_500, stdDevMsMin: 200 },
} as const;
