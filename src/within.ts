/**
 * Waits for `work` at most `ms`; true when it settled in time. A rejection counts as settled.
 * For closes and shutdowns that must end: with Redis or storage gone, a client's close waits
 * for a connection that never comes.
 */
export async function within(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(resolve, Math.max(0, ms), false)));
  try {
    return await Promise.race([work.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
