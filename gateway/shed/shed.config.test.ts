import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, parseConfig } from '../config/load.js';

// The `shed` section: off unless a threshold is set, and a bad value is named by its field.

const BASE = `plans:
  free: { priority: 0 }
upstreams:
  main:
    targets: [http://127.0.0.1:7001]
routes:
  - { prefix: /, upstream: main }
`;

describe('shed: config', () => {
  it('defaults to off, with a 100 ms sample and Retry-After 1', () => {
    assert.deepEqual({ ...parseConfig(BASE, {}).shed }, { max_inflight: 0, max_event_loop_delay_ms: 0, sample_interval_ms: 100, retry_after_s: 1 });
  });

  it('reads every field', () => {
    const cfg = parseConfig(`${BASE}shed: { max_inflight: 500, max_event_loop_delay_ms: 40, sample_interval_ms: 50, retry_after_s: 2 }\n`, {});
    assert.deepEqual({ ...cfg.shed }, { max_inflight: 500, max_event_loop_delay_ms: 40, sample_interval_ms: 50, retry_after_s: 2 });
  });

  it('names each bad field', () => {
    let errors: readonly string[] = [];
    try {
      parseConfig(`${BASE}shed: { max_inflight: -1, sample_interval_ms: 1, retry_after_s: 1.5, max_inflight_typo: 3 }\n`, {});
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      errors = err.errors;
    }
    for (const f of ['shed.max_inflight:', 'shed.sample_interval_ms:', 'shed.retry_after_s:', 'shed.max_inflight_typo:']) {
      assert.ok(errors.some((e) => e.startsWith(f)), `${f} in ${JSON.stringify(errors)}`);
    }
  });
});
