import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { storeConfigOf } from '../../common/store-config.js';
import { Metrics } from '../observe/metrics.js';
import type { Store } from '../store/types.js';
import { StoreGuard } from './store-guard.js';

// While the store breaker stays open, the gateway says why, once per 25 probe intervals:
// how long it has been open, how many probes failed and how the last one did, and
// whether a probe is still out. A store that refuses and a store that never answers
// must read differently in that line.

interface Line { readonly obj: Record<string, unknown>; readonly msg: string }

function logCollector(): { log: { info(o: object, m: string): void; warn(o: object, m: string): void; error(o: object, m: string): void }; next(msg: string): Promise<Line> } {
  const lines: Line[] = [];
  const waiting: { msg: string; resolve: (l: Line) => void }[] = [];
  const add = (obj: object, msg: string): void => {
    const l = { obj: obj as Record<string, unknown>, msg };
    lines.push(l);
    for (const w of waiting.splice(0)) {
      if (w.msg === msg) w.resolve(l);
      else waiting.push(w);
    }
  };
  return {
    log: { info: add, warn: add, error: add },
    next: (msg) => new Promise((resolve) => waiting.push({ msg, resolve })),
  };
}

async function openWith(ping: () => Promise<void>): Promise<{ guard: StoreGuard; line: Line }> {
  const cfg = storeConfigOf({ kind: 'redis', url: 'redis://127.0.0.1:1', timeout_ms: 20, late_grace_ms: 0, probe_interval_ms: 10 });
  const store = { kind: 'redis', ping } as unknown as Store;
  const { log, next } = logCollector();
  const guard = new StoreGuard(cfg, store, new Metrics(cfg.timeout_ms), log);
  const opened = next('store breaker open: limits follow the failure policy');
  for (let i = 0; i < cfg.breaker.consecutive_failures; i++) {
    await guard.run('admit', 'closed', () => Promise.reject(new Error('store admit failed')), () => 0);
  }
  await opened;
  return { guard, line: await next('store breaker still open') };
}

describe('an open store breaker says why it stays open', () => {
  it('a store that refuses: every probe failed, with its error, none out', async () => {
    const { guard, line } = await openWith(() => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:1')));
    try {
      assert.ok(Number(line.obj.failed_probes) >= 1, JSON.stringify(line.obj));
      assert.equal(line.obj.last_probe_error, 'connect ECONNREFUSED 127.0.0.1:1');
      assert.equal(line.obj.probe_in_flight, false);
      assert.ok(Number(line.obj.open_ms) >= 0);
    } finally {
      guard.stop();
    }
  });

  it('a store that never answers: the probes time out at the store deadline', async () => {
    const { guard, line } = await openWith(() => new Promise<void>(() => {}));
    try {
      assert.ok(Number(line.obj.failed_probes) >= 1, JSON.stringify(line.obj));
      assert.equal(line.obj.last_probe_error, 'store ping exceeded 20 ms');
    } finally {
      guard.stop();
    }
  });
});
