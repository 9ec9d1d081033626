// Webhook delivery against local receivers on 127.0.0.1; SSRF cases use the injected
// table resolver and the loopback-only connector, so nothing can leave the machine.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, verify as verifyEd25519 } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Webhook } from 'standardwebhooks';
import { parseRetryAfter } from './webhook-attempt.js';
import type { WebhookKeys } from '../../common/webhook-signing.js';
import { createWebhookSender, type WebhookOutcome, type WebhookSenderOptions } from './webhooks.js';
import { loopbackOnlyConnect, startServer, tableResolver, type ConnectCall, type LocalServer } from './net-test-helpers.js';

interface Received {
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

let srv: LocalServer;
let base: string;
const received: Received[] = [];
/** Per path: the statuses to answer, in order (the last one repeats). */
const script = new Map<string, number[]>();

before(async () => {
  srv = await startServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      const n = received.filter((r) => r.path === path).length;
      received.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const statuses = script.get(path) ?? [200];
      const status = statuses[Math.min(n, statuses.length - 1)]!;
      if (status === 0) {
        req.socket.destroy(); // a network error, as the sender sees it
        return;
      }
      res.writeHead(status, {
        'content-type': 'text/plain',
        ...(path === '/retry-after' && status === 429 ? { 'retry-after': '1' } : {}),
      });
      res.end('ok');
    });
  });
  base = `http://127.0.0.1:${srv.port}`;
});

after(() => srv.close());

const KEY = randomBytes(32);
const OLD_KEY = randomBytes(32);
const SECRET = `whsec_${KEY.toString('base64')}`;
const OLD_SECRET = `whsec_${OLD_KEY.toString('base64')}`;
const PAIR = generateKeyPairSync('ed25519');
/** Each customer's keys as a keyring would give them: acme has one of each, rotating two secrets (new first). */
const KEYRING: Record<string, WebhookKeys> = {
  acme: { hmac: [KEY], ed25519: [PAIR.privateKey] }, rotating: { hmac: [KEY, OLD_KEY], ed25519: [] }, keyless: { hmac: [], ed25519: [] },
};
const signingKeys = async (customer: string): Promise<WebhookKeys> => {
  const keys = KEYRING[customer];
  if (keys === undefined) throw new Error('keyring store down');
  return keys;
};

/** Verified by the standardwebhooks package (an implementation that is not ours); throws when not. */
function verify(secret: string, r: Received): unknown {
  return new Webhook(secret).verify(r.body, r.headers as Record<string, string>);
}

function sender(over: Partial<WebhookSenderOptions> = {}) {
  const connects: ConnectCall[] = [];
  const outcomes: WebhookOutcome[] = [];
  const s = createWebhookSender({
    signingKeys,
    maxAttempts: 4,
    baseDelayMs: 5,
    timeoutMs: 2000,
    allow: ['127.0.0.1'],
    resolve: tableResolver({ 'hooks.test': '127.0.0.1', 'evil.test': '10.0.0.1', 'metadata.test': '169.254.169.254' }, []),
    connect: loopbackOnlyConnect(connects),
    onOutcome: (o) => outcomes.push(o),
    ...over,
  });
  return { s, connects, outcomes };
}

// Bound every test so a delivery that never settles fails instead of hanging the run.
const T = { timeout: 180_000 };

const hits = (path: string): Received[] => received.filter((r) => r.path === path);

test('delivers a Standard Webhooks signed JSON POST that standardwebhooks verifies', T, async () => {
  const { s, outcomes } = sender();
  s.send('acme', `${base}/ok`, { id: 'abc', output: { bytes: 12 } });
  await s.idle();
  const [r] = hits('/ok');
  assert.ok(r);
  assert.equal(r.headers['content-type'], 'application/json');
  assert.deepEqual(JSON.parse(r.body), { id: 'abc', output: { bytes: 12 } });
  assert.match(String(r.headers['webhook-id']), /^msg_[A-Za-z0-9_-]{22}$/);
  assert.match(String(r.headers['webhook-signature']), /^v1,[A-Za-z0-9+/]{43}= v1a,[A-Za-z0-9+/]{86}==$/);
  // v1a: the ed25519 signature of the same content, checked with the public key alone.
  const v1a = String(r.headers['webhook-signature']).split(' ')[1]!.slice(4);
  const content = `${String(r.headers['webhook-id'])}.${String(r.headers['webhook-timestamp'])}.${r.body}`;
  assert.ok(verifyEd25519(null, Buffer.from(content), PAIR.publicKey, Buffer.from(v1a, 'base64')), 'v1a verifies with the public key');
  assert.ok(!verifyEd25519(null, Buffer.from(`${content} `), PAIR.publicKey, Buffer.from(v1a, 'base64')));
  assert.ok(Math.abs(Number(r.headers['webhook-timestamp']) - Date.now() / 1000) < 5);
  assert.deepEqual(verify(SECRET, r), { id: 'abc', output: { bytes: 12 } });
  assert.throws(() => verify(OLD_SECRET, r), /signature/i, 'another secret');
  assert.throws(() => verify(SECRET, { ...r, body: r.body + ' ' }), /signature/i, 'tampered body');
  assert.throws(() => verify(SECRET, { ...r, headers: { ...r.headers, 'webhook-id': 'msg_other' } }), /signature/i, 'other id');
  assert.deepEqual({ ...s.counters }, { delivered: 1, failed: 0, retried: 0, dropped: 0, attempts: 1 });
  assert.deepEqual(outcomes.map((o) => [o.ok, o.attempts, o.status]), [[true, 1, 200]]);
});

test('rotation: two keys sign twice, and a receiver holding either one verifies', T, async () => {
  const { s } = sender();
  s.send('rotating', `${base}/rotated`, { n: 1 });
  await s.idle();
  const [r] = hits('/rotated');
  assert.ok(r);
  assert.equal(String(r.headers['webhook-signature']).split(' ').length, 2);
  assert.deepEqual(verify(SECRET, r), { n: 1 });
  assert.deepEqual(verify(OLD_SECRET, r), { n: 1 });
});

test('keys are read at each attempt: a keyring that cannot answer (or has no key) makes a retry, never an unsigned delivery', T, async () => {
  const { s, outcomes } = sender({ maxAttempts: 2 });
  s.send('unknown-customer', `${base}/unsigned`, {});
  s.send('keyless', `${base}/unsigned`, {});
  await s.idle();
  assert.equal(hits('/unsigned').length, 0, 'nothing was sent');
  assert.deepEqual({ ...s.counters }, { delivered: 0, failed: 2, retried: 2, dropped: 0, attempts: 4 });
  assert.deepEqual(outcomes.map((o) => o.error).sort(), ['no signing key', 'signing keys unavailable: keyring store down']);
});

test('a delayed delivery waits, then goes out', T, async () => {
  const at: number[] = [];
  const { s } = sender({ onAttempt: () => at.push(Date.now()) });
  const sent = Date.now();
  s.send('acme', `${base}/delayed`, {}, 300);
  assert.equal(s.pending(), 1);
  await s.idle();
  assert.equal(hits('/delayed').length, 1);
  assert.ok(at[0]! - sent >= 290, `sent after ${at[0]! - sent} ms`);
});

test('retries on 500 then succeeds, re-signing each attempt', T, async () => {
  script.set('/flaky', [500, 503, 200]);
  const { s, outcomes } = sender();
  s.send('acme', `${base}/flaky`, { n: 1 });
  await s.idle();
  const got = hits('/flaky');
  assert.equal(got.length, 3);
  for (const r of got) verify(SECRET, r);
  assert.equal(new Set(got.map((r) => r.headers['webhook-id'])).size, 1, 'one webhook-id on every attempt');
  assert.deepEqual({ ...s.counters }, { delivered: 1, failed: 0, retried: 2, dropped: 0, attempts: 3 });
  assert.deepEqual(outcomes.map((o) => [o.ok, o.attempts]), [[true, 3]]);
});

test('retries on 429 and on network errors', T, async () => {
  script.set('/busy', [429, 0, 200]);
  const { s } = sender();
  s.send('acme', `${base}/busy`, {});
  await s.idle();
  assert.equal(hits('/busy').length, 3);
  assert.equal(s.counters.delivered, 1);
  assert.equal(s.counters.retried, 2);
});

test('a 429 Retry-After is a floor for the backoff', T, async () => {
  script.set('/retry-after', [429, 200]);
  const at: number[] = [];
  const { s } = sender({ baseDelayMs: 5, onAttempt: () => at.push(Date.now()) });
  s.send('acme', `${base}/retry-after`, {});
  await s.idle();
  assert.equal(hits('/retry-after').length, 2);
  assert.equal(at.length, 2);
  assert.ok(at[1]! - at[0]! >= 950, `retried after ${at[1]! - at[0]!} ms`);
});

test('never retries a 4xx that means never; retries 408 and 425', T, async () => {
  script.set('/reject', [400]);
  script.set('/gone', [410]);
  script.set('/later', [408, 425, 200]);
  const { s, outcomes } = sender();
  s.send('acme', `${base}/reject`, {});
  s.send('acme', `${base}/gone`, {});
  s.send('acme', `${base}/later`, {});
  await s.idle();
  assert.equal(hits('/reject').length, 1);
  assert.equal(hits('/gone').length, 1);
  assert.equal(hits('/later').length, 3);
  assert.deepEqual({ ...s.counters }, { delivered: 1, failed: 2, retried: 2, dropped: 0, attempts: 5 });
  outcomes.splice(outcomes.findIndex((o) => o.ok), 1);
  assert.deepEqual(outcomes.map((o) => o.status).sort(), [400, 410]);
});

test('gives up after maxAttempts', T, async () => {
  script.set('/down', [500]);
  const { s, outcomes } = sender({ maxAttempts: 3 });
  s.send('acme', `${base}/down`, {});
  await s.idle();
  assert.equal(hits('/down').length, 3);
  assert.deepEqual({ ...s.counters }, { delivered: 0, failed: 1, retried: 2, dropped: 0, attempts: 3 });
  assert.deepEqual(outcomes.map((o) => [o.ok, o.attempts, o.status]), [[false, 3, 500]]);
});

test('times out a receiver that never answers, and retries it', T, async () => {
  let stalled = 0;
  const slow = await startServer(() => void stalled++); // never responds
  try {
    const { s } = sender({ timeoutMs: 150, maxAttempts: 2 });
    s.send('acme', `http://127.0.0.1:${slow.port}/`, {});
    await s.idle();
    assert.equal(stalled, 2);
    assert.equal(s.counters.failed, 1);
    assert.equal(s.counters.retried, 1);
  } finally {
    await slow.close();
  }
});

test('SSRF guard: forbidden destinations are refused before connect and not retried', T, async () => {
  const { s, connects, outcomes } = sender({ allow: [] });
  s.send('acme', `${base}/ok`, {}); // loopback without the allow-list
  s.send('acme', 'http://evil.test/hook', {});
  s.send('acme', 'http://metadata.test/latest/meta-data/', {});
  s.send('acme', 'http://169.254.169.254/', {});
  s.send('acme', 'http://[::1]/', {});
  await s.idle();
  assert.deepEqual(connects, [], 'the guard refused before connect was called');
  assert.deepEqual({ ...s.counters }, { delivered: 0, failed: 5, retried: 0, dropped: 0, attempts: 5 });
  assert.ok(outcomes.every((o) => /non-public/.test(o.error ?? '')), JSON.stringify(outcomes));
});

test('bad schemes, credentials and redirects are final failures', T, async () => {
  script.set('/moved', [302]);
  const { s, connects } = sender();
  s.send('acme', 'file:///etc/passwd', {});
  s.send('acme', 'gopher://127.0.0.1/', {});
  s.send('acme', `http://u:p@127.0.0.1:${srv.port}/ok`, {});
  s.send('acme', `${base}/moved`, {}); // redirects are not followed for webhooks
  await s.idle();
  assert.equal(connects.length, 1, 'only the redirecting receiver was contacted');
  assert.equal(hits('/moved').length, 1);
  assert.deepEqual({ ...s.counters }, { delivered: 0, failed: 4, retried: 0, dropped: 0, attempts: 4 });
});

test('named receivers are resolved through the guard', T, async () => {
  const { s, connects } = sender();
  s.send('acme', `http://hooks.test:${srv.port}/named`, { x: 1 });
  await s.idle();
  assert.equal(hits('/named')[0]?.headers.host, `hooks.test:${srv.port}`);
  assert.deepEqual(connects, [{ address: '127.0.0.1', port: srv.port, host: 'hooks.test' }]);
});

test('the queue is bounded; close() cancels waiting retries', T, async () => {
  script.set('/slowfail', [500]);
  let parked = 0;
  let bothParked: () => void = () => undefined;
  const parkedP = new Promise<void>((resolve) => (bothParked = resolve));
  const { s } = sender({
    maxQueue: 2,
    concurrency: 1,
    baseDelayMs: 60_000,
    maxAttempts: 5,
    onAttempt: (a) => {
      if (a.willRetry && ++parked === 2) bothParked();
    },
  });
  s.send('acme', `${base}/slowfail`, {});
  s.send('acme', `${base}/slowfail`, {});
  s.send('acme', `${base}/slowfail`, {}); // over the bound
  assert.equal(s.counters.dropped, 1);
  assert.equal(s.pending(), 2);
  // Wait (event-driven) until both first attempts have failed and are parked for a minute.
  await parkedP;
  assert.equal(s.pending(), 2);
  const idle = s.idle();
  s.close();
  await idle;
  assert.deepEqual({ ...s.counters }, { delivered: 0, failed: 2, retried: 2, dropped: 1, attempts: 2 });
  s.send('acme', `${base}/slowfail`, {});
  assert.equal(s.counters.dropped, 2, 'a closed sender accepts nothing');
});


test('parseRetryAfter: seconds or an HTTP date, capped at a day; anything else is ignored', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.equal(parseRetryAfter('120', now), 120_000);
  assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:01:00 GMT', now), 60_000);
  assert.equal(parseRetryAfter('Wed, 31 Dec 2025 00:00:00 GMT', now), 0);
  assert.equal(parseRetryAfter('999999', now), 86_400_000);
  assert.equal(parseRetryAfter('soon', now), undefined);
  assert.equal(parseRetryAfter(undefined, now), undefined);
});
