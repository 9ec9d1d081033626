// What routing costs per request, outside the test suite and without the network: the
// route stage (Host check, virtual host, exact map, prefix search, regexes) on the anchors
// config with 1 route and with the many-routes variant (routes-config.ts), one request
// object reused. Run it under callgrind for a count that does not move with the host's load:
//
//   node dist/load-tests/routes-bench.js 200 1000000            # ns per request, 200 routes
//   valgrind --tool=callgrind --smc-check=all-non-file --callgrind-out-file=/tmp/cg.%p node --single-threaded dist/load-tests/routes-bench.js 200 20000
//   (and with 100000: the difference over the 80,000 more is instructions per request;
//    --single-threaded keeps V8's background work in the same place, so counts repeat;
//    docs/benchmarks.md has the figures)
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../gateway/config/load.js';
import { checkRequestTarget } from '../gateway/http/request-target.js';
import { RequestContext } from '../gateway/pipeline/context.js';
import { routeStage } from '../gateway/route/route-stage.js';
import { BENCH_PATH, withManyRoutes } from './routes-config.js';

const [total = '200', iterations = '1000000'] = process.argv.slice(2);
const base = readFileSync(fileURLToPath(new URL('../../load-tests/configs/anchors.yaml', import.meta.url)), 'utf8');
const cfg = parseConfig(withManyRoutes(base, Number(total)), {});
const stage = routeStage(cfg);
const req = { method: 'GET', url: BENCH_PATH, headers: { host: '127.0.0.1:8080', 'x-api-key': 'bench' }, socket: {} } as unknown as IncomingMessage;
const target = checkRequestTarget(BENCH_PATH);
if (!target.ok) throw new Error('bad bench path');

const n = Number(iterations);
let chosen = '';
const t0 = process.hrtime.bigint();
for (let i = 0; i < n; i++) {
  // As the server does per request: a context, the target check, the route stage.
  const ctx = new RequestContext(req, {} as ServerResponse, 'id', BENCH_PATH, 0);
  const t = checkRequestTarget(req.url);
  if (t.ok) ctx.uri = t.uri;
  if (stage(ctx) !== true) throw new Error('the bench path found no route');
  chosen = ctx.route!.name;
}
const ns = Number(process.hrtime.bigint() - t0) / Math.max(1, n);
process.stdout.write(`${total} routes: ${n} requests routed to ${chosen || '(none)'}, ${ns.toFixed(0)} ns each\n`);
