// Runs async work over a list with at most `limit` tasks in flight (the machine has few cores and
// sharp/fs already use the libuv pool, so unbounded Promise.all would only thrash).

/**
 * Like `Promise.all(items.map(fn))`, but with at most `limit` calls running; results keep input order.
 * After a failure no new calls start, and the rejection waits until the calls in flight have settled,
 * so the caller can clean up (for example delete a temporary folder) without racing late writes.
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  async function worker(): Promise<void> {
    while (next < items.length && !failure) {
      const index = next++;
      try {
        results[index] = await fn(items[index], index);
      } catch (error) {
        failure ??= { error };
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, () => worker()));
  if (failure) throw failure.error;
  return results;
}
