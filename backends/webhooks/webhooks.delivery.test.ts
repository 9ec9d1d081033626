// Queued webhook delivery end to end: a real redis-server, a real sluice-webhooks
// process, deliveries enqueued by the enqueuer sluice-backend uses, and a receiver on
// 127.0.0.1 (the only address the worker is allowed to reach). Signatures are checked
// with the standardwebhooks package, not with our signer.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Webhook } from 'standardwebhooks';
import { request } from 'undici';
import { pollUntil } from '../../test/harness/poll.js';
import { startRedis, type RedisProcess } from '../../test/harness/redis.js';
import { newMasterKey, newSecret, redisKeyring, urlStore, spawnWebhooks, startReceiver, type Delivery, type Receiver, type WebhooksProcess } from '../../test/harness/webhooks.js';
import { createWebhookEnqueuer, type WebhookEnqueuer } from '../../common/webhook-queue.js';

const MASTER = newMasterKey();
// acme's key before and after the rotation in before(): deliveries carry both signatures.
let SECRET = '';
let OLD_SECRET = '';
const TOKEN = 'admin-token-of-some-length';
const STEP_MS = 200;

let redis: RedisProcess;
let rx: Receiver;
let worker: WebhooksProcess;
let q: WebhookEnqueuer;

before(async () => {
  redis = await startRedis();
  rx = await startReceiver();
  const keyring = redisKeyring(redis.url, MASTER);
  OLD_SECRET = (await keyring.state('acme')).key;
  SECRET = (await keyring.rotate('acme', 3_600_000)).key;
  keyring.close();
  worker = await spawnWebhooks(redis.url, ['--retry-schedule-ms', `${STEP_MS},${STEP_MS},${STEP_MS}`, '--disable-after', '1'], {
    SLUICE_MASTER_KEY: MASTER, SLUICE_WEBHOOKS_ADMIN_TOKEN: TOKEN,
  });
  q = createWebhookEnqueuer({ store: urlStore(redis.url), log: pino({ level: 'silent' }) });
});

after(async () => {
  await q?.close();
  await worker?.stop();
  await rx?.close();
  await redis?.stop();
});

const at = (path: string): Delivery[] => rx.deliveries.filter((d) => d.path === path);
const verify = (secret: string, d: Delivery): unknown => new Webhook(secret).verify(d.body, d.headers as Record<string, string>);

async function admin(method: string, path: string, token: string | null = TOKEN): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await request(`${worker.adminUrl}${path}`, { method, headers: token === null ? {} : { authorization: `Bearer ${token}` } });
  return { status: res.statusCode, body: await res.body.json() as Record<string, unknown> };
}

interface DeadLetter { id: string; url: string; attempts: number; error: string }
async function deadLetters(endpoint: string): Promise<DeadLetter[]> {
  const r = await admin('GET', `/admin/dead-letters?endpoint=${encodeURIComponent(endpoint)}`);
  assert.equal(r.status, 200);
  return r.body.dead_letters as DeadLetter[];
}
async function waitForDeadLetters(endpoint: string, n: number): Promise<DeadLetter[]> {
  const r = await pollUntil(async () => { const d = await deadLetters(endpoint); return d.length >= n ? d : undefined; }, 20_000, 50);
  assert.ok(r.value, `${n} dead letters for ${endpoint}`);
  return r.value;
}

describe('sluice-webhooks delivers from the queue', { timeout: 180_000 }, () => {
  it('signs with Standard Webhooks: both keys of a rotation verify, the body is the payload', async () => {
    q.send('acme', `${rx.url}/ok`, { id: 'r1', status: 'succeeded' });
    await rx.until(() => at('/ok').length === 1);
    const d = at('/ok')[0]!;
    assert.match(String(d.headers['webhook-id']), /^msg_[A-Za-z0-9_-]{22}$/);
    assert.deepEqual(String(d.headers['webhook-signature']).split(' ').map((s) => s.split(',')[0]), ['v1', 'v1', 'v1a', 'v1a']);
    assert.deepEqual(verify(SECRET, d), { id: 'r1', status: 'succeeded' });
    assert.deepEqual(verify(OLD_SECRET, d), { id: 'r1', status: 'succeeded' });
    assert.throws(() => verify(newSecret(), d), /signature/i);
  });

  it('retries a 503, waiting at least its Retry-After, with the same webhook-id, until delivered', async () => {
    rx.reply = (d, nth) => (d.path === '/busy' && nth === 0 ? { status: 503, headers: { 'retry-after': '1' } } : { status: 200 });
    q.send('acme', `${rx.url}/busy`, { n: 2 });
    await rx.until(() => at('/busy').length === 2);
    const [first, second] = at('/busy') as [Delivery, Delivery];
    assert.equal(second.headers['webhook-id'], first.headers['webhook-id']);
    assert.ok(second.at - first.at >= 950, `retried after ${Math.round(second.at - first.at)} ms; Retry-After said 1 s (the schedule ${STEP_MS} ms)`);
    verify(SECRET, second);
  });

  it('410 is final: one attempt, a dead letter the admin API lists and replays with its id', async () => {
    rx.reply = (d) => (d.path === '/gone' ? { status: 410 } : { status: 200 });
    q.send('acme', `${rx.url}/gone`, { n: 3 });
    const [dl] = await waitForDeadLetters(`${rx.url}/gone`, 1);
    assert.equal(at('/gone').length, 1);
    assert.equal(dl!.id, at('/gone')[0]!.headers['webhook-id']);
    assert.equal(dl!.error, 'HTTP 410');
    rx.reply = () => ({ status: 200 });
    assert.equal((await admin('POST', `/admin/dead-letters/${dl!.id}/replay`)).status, 200);
    await rx.until(() => at('/gone').length === 2);
    assert.equal(at('/gone')[1]!.headers['webhook-id'], dl!.id);
    assert.deepEqual(verify(SECRET, at('/gone')[1]!), { n: 3 });
    assert.deepEqual(await waitForDeadLetters(`${rx.url}/gone`, 0), []);
    assert.equal((await admin('POST', `/admin/dead-letters/${dl!.id}/replay`)).status, 404, 'no longer a dead letter');
  });

  it('bounds the attempts, disables an endpoint failing for --disable-after, and a replay of the endpoint delivers all', async () => {
    const down = `${rx.url}/down`;
    rx.reply = (d) => (d.path === '/down' ? { status: 500 } : { status: 200 });
    q.send('acme', down, { n: 'a' });
    const [a] = await waitForDeadLetters(down, 1);
    assert.equal(at('/down').length, 4, 'the first attempt and one per schedule step');
    assert.equal(a!.attempts, 4);
    // The endpoint has now failed for as long as it takes; past --disable-after (1 s) the next failure disables it.
    // On a busy host a's own attempts can span that second (the receiver's clock says): then
    // its last failure disabled the endpoint already, and b gets no attempt.
    const firstFailure = at('/down')[0]!.at;
    // (Within 50 ms of the second, the worker's clock and the receiver's may disagree: either.)
    const span = at('/down')[3]!.at - firstFailure;
    const expected = span >= 1050 ? [4] : span < 950 ? [5] : [4, 5];
    await new Promise((r) => setTimeout(r, Math.max(0, firstFailure + 1100 - performance.now())));
    q.send('acme', down, { n: 'b' });
    await waitForDeadLetters(down, 2);
    assert.ok(expected.includes(at('/down').length), `${at('/down').length} attempts; a's spanned ${span.toFixed(0)} ms: one attempt for b, then disabled, or none if a's last failure disabled it`);
    const sent = at('/down').length;
    const eps = (await admin('GET', '/admin/endpoints')).body.endpoints as { url: string; disabled_at: string | null; failures: number }[];
    const ep = eps.find((e) => e.url === down);
    assert.ok(ep?.disabled_at, JSON.stringify(eps));
    q.send('acme', down, { n: 'c' });
    const three = await waitForDeadLetters(down, 3);
    assert.equal(at('/down').length, sent, 'nothing is sent to a disabled endpoint');
    assert.match(three.find((d) => !at('/down').some((x) => x.headers['webhook-id'] === d.id))!.error, /endpoint disabled/);

    rx.reply = () => ({ status: 200 });
    const replay = await admin('POST', `/admin/dead-letters/replay?endpoint=${encodeURIComponent(down)}`);
    assert.deepEqual(replay, { status: 200, body: { replayed: 3 } });
    await rx.until(() => new Set(at('/down').slice(sent).map((d) => d.headers['webhook-id'])).size === 3);
    assert.deepEqual(new Set(at('/down').slice(sent).map((d) => d.headers['webhook-id'])), new Set(three.map((d) => d.id)), 'each with its original id');
    assert.deepEqual(await waitForDeadLetters(down, 0), []);
    assert.equal(((await admin('GET', '/admin/endpoints')).body.endpoints as { url: string }[]).some((e) => e.url === down), false, 'enabled again');
  });

  it('a {url, delay} webhook is a delayed job: counted as delayed, delivered once due', async () => {
    const metric = async (name: string): Promise<number> => {
      const text = await (await request(`${worker.adminUrl}/metrics`)).body.text();
      return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
    };
    const sent = performance.now();
    q.send('acme', `${rx.url}/later`, { n: 5 }, 1500);
    const seen = await pollUntil(async () => ((await metric('sluice_webhooks_delayed')) === 1 ? true : undefined), 5000, 50);
    assert.ok(seen.value, 'sluice_webhooks_delayed shows it');
    await rx.until(() => at('/later').length === 1);
    assert.ok(at('/later')[0]!.at - sent >= 1450, `delivered after ${Math.round(at('/later')[0]!.at - sent)} ms`);
    assert.ok((await metric('sluice_webhooks_delivered_total')) >= 1);
    const text = await (await request(`${worker.adminUrl}/metrics`)).body.text();
    for (const name of ['sluice_webhooks_queued', 'sluice_webhooks_active', 'sluice_webhooks_dead_letters', 'sluice_webhooks_delivery_latency_seconds_bucket', 'sluice_webhooks_attempts_per_delivery_bucket']) {
      assert.ok(text.includes(name), name);
    }
  });

  it("each customer's deliveries verify with its own key only, never with another customer's (the official verifier)", async () => {
    const keyring = redisKeyring(redis.url, MASTER);
    const globex = (await keyring.state('globex')).key;
    keyring.close();
    q.send('acme', `${rx.url}/acme-own`, { for: 'acme' });
    q.send('globex', `${rx.url}/globex-own`, { for: 'globex' });
    await rx.until(() => at('/acme-own').length === 1 && at('/globex-own').length === 1);
    const [a, g] = [at('/acme-own')[0]!, at('/globex-own')[0]!];
    assert.deepEqual(verify(SECRET, a), { for: 'acme' });
    assert.deepEqual(verify(globex, g), { for: 'globex' });
    assert.throws(() => verify(globex, a), /signature/i, "globex's key does not verify acme's delivery");
    assert.throws(() => verify(SECRET, g), /signature/i, "acme's key does not verify globex's delivery");
    assert.throws(() => verify(OLD_SECRET, g), /signature/i);
  });

  it('a delivery already queued is signed when it is sent, with the keys current then', async () => {
    const keyring = redisKeyring(redis.url, MASTER);
    const before = (await keyring.state('rotco')).key;
    q.send('rotco', `${rx.url}/rotco`, { n: 6 }, 1500);
    // Rotated with no overlap while the delivery waits: only the new key may sign it.
    const after = (await keyring.rotate('rotco', 0)).key;
    keyring.close();
    await rx.until(() => at('/rotco').length === 1);
    const d = at('/rotco')[0]!;
    assert.deepEqual(String(d.headers['webhook-signature']).split(' ').map((s) => s.split(',')[0]), ['v1', 'v1a'], 'one key signs');
    assert.deepEqual(verify(after, d), { n: 6 });
    assert.throws(() => verify(before, d), /signature/i, 'the key retired before the send does not sign it');
  });

  it('the admin API wants the token and says what is wrong with a request', async () => {
    assert.equal((await admin('GET', '/admin/dead-letters', null)).status, 401);
    assert.equal((await admin('GET', '/admin/dead-letters', 'wrong-token-of-some-length')).status, 401);
    const bad = await admin('POST', '/admin/dead-letters/replay');
    assert.equal(bad.status, 400);
    assert.deepEqual(Object.keys(bad.body.error as object).sort(), ['code', 'field', 'message', 'request_id']);
    assert.equal((await admin('GET', '/admin/dead-letters?limit=0')).status, 400);
    assert.equal((await admin('POST', '/admin/dead-letters/nope/replay')).status, 400);
    assert.equal((await admin('POST', `/admin/dead-letters/msg_${'A'.repeat(22)}/replay`)).status, 404);
    assert.equal((await admin('DELETE', '/admin/dead-letters')).status, 405);
    assert.equal((await request(`${worker.adminUrl}/healthz`)).statusCode, 200);
  });
});
