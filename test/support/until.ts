// Polls a probe until it gives a value: how tests wait for a workflow to reach a state they then inspect.

/**
 * Resolves with the first value `probe` gives other than undefined (a probe that throws counts as "not yet"); after
 * `timeoutMs` fails naming `what`. `intervalMs` is the pause between probes.
 */
export async function until<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 90_000, intervalMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (${timeoutMs} ms)`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
