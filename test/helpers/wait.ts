/**
 * Waiting in tests: poll a condition until it holds, bounded. Tests wait on conditions, never on
 * fixed sleeps, so they hold on a loaded CI machine; the bound turns "never" into a clear failure.
 */
export async function waitUntil(cond: () => boolean | Promise<boolean>, timeoutMs = 15_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
