/** Failure-detection timing shared by the fault test and its node processes. */
export const FAULT_TIMING = {
  heartbeatIntervalMs: 200,
  checkIntervalMs: 50,
  detector: { deadAfterMs: 1_500 },
} as const;
