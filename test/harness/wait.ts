/** Resolves with what `p` resolves to, or with `onTimeout` after `ms` (the timer never outlives the wait). */
export async function within<T, U>(p: Promise<T>, ms: number, onTimeout: U): Promise<T | U> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<U>((resolve) => { timer = setTimeout(resolve, ms, onTimeout); })]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * How long the harness waits for something that must happen (a process listening, a log
 * line, replicas in sync) before it gives up: long, because a wait that ends on the event
 * costs nothing when the event comes, and a busy host is slow (a gateway has been seen to
 * take over 15 s to start beside the suite at a load average of 40 on 2 cores).
 */
export const EVENT_TIMEOUT_MS = 60_000;
