/** Resolves with what `p` resolves to, or with `onTimeout` after `ms` (the timer never outlives the wait). */
export async function within<T, U>(p: Promise<T>, ms: number, onTimeout: U): Promise<T | U> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<U>((resolve) => { timer = setTimeout(resolve, ms, onTimeout); })]);
  } finally {
    clearTimeout(timer);
  }
}
