import { request } from 'undici';

export interface DriveResult {
  /** Answers per `backend` field of the JSON body (2xx only). */
  readonly byBackend: Map<string, number>;
  /** Answers per status code. */
  readonly byStatus: Map<number, number>;
  /** Error codes of non-2xx JSON answers, and transport errors. */
  readonly errors: string[];
}

/**
 * Sends `total` GETs to `url` with at most `concurrency` in flight (bounded, no open
 * loop) and counts who answered. `path(i)` names each request's path.
 */
export async function drive(url: string, total: number, concurrency: number, headers: Record<string, string> = {}, path = (i: number) => `/v1/drive/${i}`): Promise<DriveResult> {
  const byBackend = new Map<string, number>();
  const byStatus = new Map<number, number>();
  const errors: string[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < total) {
      const i = next++;
      try {
        const res = await request(`${url}${path(i)}`, { headers });
        byStatus.set(res.statusCode, (byStatus.get(res.statusCode) ?? 0) + 1);
        const body = await res.body.json() as { backend?: string; error?: { code: string } };
        if (res.statusCode < 300 && body.backend !== undefined) byBackend.set(body.backend, (byBackend.get(body.backend) ?? 0) + 1);
        else errors.push(body.error?.code ?? String(res.statusCode));
      } catch (err) {
        errors.push((err as { code?: string }).code ?? (err as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { byBackend, byStatus, errors };
}
