// sluice-webhooks' admin API on live answers: its OpenAPI document checked by a real
// validator, every operation exercised and every answer checked against the document,
// labelled tokens, and every replay and deletion in the audit log (shared with the gateways
// on the same Redis) without the token in it.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { request } from 'undici';
import { contractOf, type Contract, type Seen } from '../../test/harness/openapi-contract.js';
import { pollUntil } from '../../test/harness/poll.js';
import { startRedis, type RedisProcess } from '../../test/harness/redis.js';
import { newMasterKey, spawnWebhooks, startReceiver, urlStore, type Receiver, type WebhooksProcess } from '../../test/harness/webhooks.js';
import { webhooksAdminOpenApi } from './admin.js';
import { createWebhookEnqueuer, type WebhookEnqueuer } from './queue.js';

const OPS_TOKEN = 'ops-token-0123456789abcdef';
const ADMIN_TOKEN = 'admin-token-0123456789abcd';

describe("sluice-webhooks' admin API", { timeout: 90_000 }, () => {
  let redis: RedisProcess;
  let rx: Receiver;
  let worker: WebhooksProcess;
  let q: WebhookEnqueuer;
  let contract: Contract;
  const problems: string[] = [];

  before(async () => {
    redis = await startRedis();
    rx = await startReceiver();
    rx.reply = () => ({ status: 410 });
    worker = await spawnWebhooks(redis.url, ['--retry-schedule-ms', '100', '--admin-max-auth-failures', '1000'], {
      SLUICE_MASTER_KEY: newMasterKey(), SLUICE_WEBHOOKS_ADMIN_TOKEN: ADMIN_TOKEN,
      SLUICE_WEBHOOKS_ADMIN_TOKENS: `ops=${createHash('sha256').update(OPS_TOKEN).digest('hex')}`,
    });
    q = createWebhookEnqueuer({ store: urlStore(redis.url), log: pino({ level: 'silent' }) });
  });
  after(async () => {
    await q?.close();
    await worker?.stop();
    await rx?.close();
    await redis?.stop();
  });

  async function call(method: 'GET' | 'POST' | 'DELETE', path: string, token: string | null = ADMIN_TOKEN): Promise<Seen & { json: any }> {
    const res = await request(`${worker.adminUrl}${path}`, { method, headers: token === null ? {} : { authorization: `Bearer ${token}` } });
    const s: Seen = { method, url: path, status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
    problems.push(...contract.check(s));
    const text = s.body.toString('utf8');
    return { ...s, json: res.headers['content-type']?.toString().includes('json') && text !== '' ? JSON.parse(text) : undefined };
  }
  const deadLetters = async (n: number): Promise<{ id: string; url: string }[]> => {
    const r = await pollUntil(async () => {
      const d = (await call('GET', '/admin/dead-letters')).json.dead_letters as { id: string; url: string }[];
      return d.length === n ? d : undefined;
    }, 20_000, 50);
    assert.ok(r.value, `${n} dead letters`);
    return r.value;
  };

  it('serves a valid OpenAPI 3.1 document (swagger-parser), the one its route table generates', async () => {
    const res = await request(`${worker.adminUrl}/admin/openapi.json`);
    const doc = await res.body.json() as object;
    assert.equal(JSON.stringify(doc), JSON.stringify(webhooksAdminOpenApi()));
    contract = await contractOf(doc);
    await call('GET', '/admin/openapi.json', null);
    await call('GET', '/healthz', null);
    await call('GET', '/metrics', null);
  });

  it('replays and deletes dead letters, each recorded in the audit log under its token label', async () => {
    for (const p of ['/a', '/b', '/c']) q.send('acme', `${rx.url}${p}?token=secret-in-url`, { p });
    const dead = await deadLetters(3);
    const byPath = (p: string) => dead.find((d) => new URL(d.url).pathname === p)!;
    assert.equal((await call('POST', `/admin/dead-letters/${byPath('/a').id}/replay`, OPS_TOKEN)).status, 200);
    await deadLetters(3);
    assert.equal((await call('DELETE', `/admin/dead-letters/${byPath('/b').id}`)).status, 200);
    assert.equal((await call('DELETE', `/admin/dead-letters/${byPath('/b').id}`)).status, 404);
    const replayed = await call('POST', `/admin/dead-letters/replay?endpoint=${encodeURIComponent(byPath('/c').url)}`, OPS_TOKEN);
    assert.deepEqual(replayed.json, { replayed: 1 });
    assert.equal((await call('GET', '/admin/endpoints')).status, 200);
    const audit = await call('GET', '/admin/audit?limit=10');
    assert.deepEqual(audit.json.entries.map((e: { actor: string; action: string; source: string }) => [e.actor, e.source, e.action]), [
      ['ops', 'webhooks', 'dead_letters.replay'], ['admin', 'webhooks', 'dead_letter.delete'], ['ops', 'webhooks', 'dead_letter.replay'],
    ]);
    assert.equal(audit.json.entries[1].target, byPath('/b').id);
    const text = audit.body.toString('utf8');
    for (const secret of [OPS_TOKEN, ADMIN_TOKEN, 'secret-in-url', createHash('sha256').update(OPS_TOKEN).digest('hex')]) assert.ok(!text.includes(secret), secret);
  });

  it('refuses what it must: no token, a wrong one, bad ids and queries, other methods', async () => {
    assert.equal((await call('GET', '/admin/dead-letters', null)).status, 401);
    assert.equal((await call('GET', '/admin/dead-letters', 'wrong-token-0123456789')).status, 401);
    assert.equal((await call('GET', '/admin/dead-letters?limit=0')).status, 400);
    assert.equal((await call('POST', '/admin/dead-letters/replay')).status, 400);
    assert.equal((await call('POST', '/admin/dead-letters/nope/replay')).status, 400);
    assert.equal((await call('POST', `/admin/dead-letters/msg_${'A'.repeat(22)}/replay`)).status, 404);
    assert.equal((await call('DELETE', '/admin/dead-letters/nope')).status, 400);
    assert.equal((await call('GET', '/admin/audit?limit=5000')).status, 400);
    assert.equal((await call('DELETE', '/admin/dead-letters')).status, 405);
  });

  it('every answer is described by the document, and every operation was exercised', () => {
    assert.deepEqual(problems, []);
    assert.deepEqual(contract.operations().filter((op) => !contract.used.has(op)), []);
  });
});
