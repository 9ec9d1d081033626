import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'undici';
import type { Group } from './scenario.js';

// The keys each group sends with. A Sluice target makes them through its admin API,
// one customer per key (limits apply per customer, and the oracle judges per key);
// any other gateway (nginx+Lua) reads them from a file, one key per line.

/** Keys made concurrently at most this many at a time, so the admin API is not flooded. */
const ADMIN_CONCURRENCY = 16;

export interface AdminTarget { readonly url: string; readonly token: string }

export async function provisionKeys(groups: readonly Group[], admin: AdminTarget | undefined, runId: string): Promise<string[][]> {
  const out: string[][] = [];
  for (const g of groups) {
    const src = g.keys;
    if (src.kind === 'file') {
      const keys = readFileSync(src.file, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
      if (keys.length === 0) throw new Error(`group ${g.name}: no keys in ${src.file}`);
      out.push(keys);
    } else if (src.kind === 'invalid') {
      // Well-formed like real keys, never issued: the gateway must answer 401.
      out.push(Array.from({ length: src.count }, () => `sk_${randomBytes(24).toString('base64url')}`));
    } else {
      if (admin === undefined) throw new Error(`group ${g.name}: keys.count needs the admin API: admin.url and admin.token (or token_env) in the scenario, or --admin URL and --admin-token`);
      const keys = new Array<string>(src.count);
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < src.count) {
          const i = next++;
          keys[i] = await createKey(admin, `lt-${runId}-${g.name}-${i}`, src.plan);
        }
      };
      await Promise.all(Array.from({ length: Math.min(ADMIN_CONCURRENCY, src.count) }, worker));
      out.push(keys);
    }
  }
  return out;
}

async function createKey(admin: AdminTarget, customer: string, plan: string): Promise<string> {
  const res = await request(new URL('/admin/keys', admin.url), {
    method: 'POST',
    headers: { authorization: `Bearer ${admin.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ customer, plan, label: 'sluice loadtest' }),
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  });
  const text = await res.body.text();
  if (res.statusCode !== 201) throw new Error(`POST ${admin.url}/admin/keys for ${customer}: ${res.statusCode} ${text}`);
  return (JSON.parse(text) as { key: string }).key;
}

/** The gateway's pid, when its admin /healthz reports one (to read its CPU from /proc). */
export async function gatewayPid(adminUrl: string): Promise<number | undefined> {
  try {
    const res = await request(new URL('/healthz', adminUrl), { headersTimeout: 5000, bodyTimeout: 5000 });
    const body = (await res.body.json()) as { pid?: unknown };
    return typeof body.pid === 'number' && Number.isInteger(body.pid) ? body.pid : undefined;
  } catch {
    return undefined;
  }
}
