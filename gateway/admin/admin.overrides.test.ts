import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { ConfigError, parseConfig } from '../config/load.js';
import { Metrics } from '../observe/metrics.js';
import { MemoryStore } from '../store/memory-store.js';
import { MemoryAuditLog } from '../../common/admin/audit-log.js';
import { createAdminServer } from './admin-server.js';
import { admin } from '../../test/harness/admin.js';
import { testConfig } from '../../test/harness/config.js';

// A customer's limit overrides are one schema for the config file and for
// PUT /admin/customers/{id}: each side refuses the same values, naming the same field.

const config = (overrides?: object): string => stringify({
  ...testConfig({ upstreams: ['http://127.0.0.1:1'] }),
  ...(overrides === undefined ? {} : { customers: { c: { plan: 'test', overrides } } }),
});

function configErrors(overrides: object): string[] {
  try {
    parseConfig(config(overrides), {});
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return [...err.errors];
    throw err;
  }
}

describe('customer overrides: the config and the admin API agree', () => {
  let url: string;
  let server: ReturnType<typeof createAdminServer>;
  before(async () => {
    const store = new MemoryStore();
    server = createAdminServer({ cfg: parseConfig(config(), {}), store, metrics: new Metrics(50), log: pino({ level: 'silent' }), storeReady: async () => {}, audit: new MemoryAuditLog(60_000), webhookKeys: undefined });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }));

  const refused: [string, object, string][] = [
    ['a fractional daily quota', { quota_day: 1.5 }, 'quota_day'],
    ['a fractional monthly quota', { quota_month: 0.5 }, 'quota_month'],
    ['a burst below one token', { rate: 5, burst: 0.5 }, 'burst'],
    ['a burst below one token with the rate left to the plan', { burst: 0 }, 'burst'],
    ['a negative rate', { rate: -1 }, 'rate'],
    ['a fractional in-flight limit', { max_inflight: 2.5 }, 'max_inflight'],
    ['a number as a string', { max_body_bytes: '100' }, 'max_body_bytes'],
    ['an unknown limit', { brust: 2 }, 'brust'],
  ];
  for (const [what, overrides, field] of refused) {
    it(`both refuse ${what}`, async () => {
      const errors = configErrors(overrides);
      assert.equal(errors.length, 1, errors.join('\n'));
      assert.match(errors[0]!, new RegExp(`^customers\\.c\\.overrides\\.${field}: `));
      const r = await admin(url, 'PUT', '/admin/customers/c', { plan: 'test', overrides });
      assert.equal(r.status, 400, r.text);
      assert.equal(r.body.error.code, 'bad_request');
      // The same wording, without the config's `customers.c.` in front.
      assert.equal(r.body.error.message, errors[0]!.replace('customers.c.', ''));
    });
  }

  it('both take a burst below one when the override turns the bucket off, and whole numbers', async () => {
    const overrides = { rate: 0, burst: 0, quota_day: 100, max_body_bytes: 4096 };
    assert.deepEqual({ ...parseConfig(config(overrides), {}).customers.get('c')!.overrides }, overrides);
    const r = await admin(url, 'PUT', '/admin/customers/c', { plan: 'test', overrides });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.overrides, overrides);
  });

  it('the admin API reports every problem of a body at once', async () => {
    const r = await admin(url, 'PUT', '/admin/customers/c', { plna: 'test', overrides: { quota_day: 1.5, rate: 'x' } });
    assert.equal(r.status, 400);
    const parts = String(r.body.error.message).split('; ');
    for (const field of ['plna', 'overrides.quota_day', 'overrides.rate']) {
      assert.ok(parts.some((p) => p.startsWith(`${field}: `)), `${field} in ${r.body.error.message}`);
    }
  });
});
