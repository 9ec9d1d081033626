#!/usr/bin/env node
// sluice-webhooks: delivers the webhooks sluice-backend --webhook-redis enqueued. See backends/README.md.
import { ConfigError } from '../../common/errors.js';
import { parseWebhooksConfig, usage, type WebhooksConfig } from './config.js';
import { runWebhooks } from './main.js';
import { requireSupportedNode } from '../../common/runtime.js';

requireSupportedNode('sluice-webhooks');

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(usage());
  process.exit(0);
}
let cfg: WebhooksConfig;
try {
  cfg = parseWebhooksConfig(args, process.env);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`sluice-webhooks: ${err.message}\n`);
  process.exit(2);
}
await runWebhooks(cfg).catch((err: unknown) => {
  process.stderr.write(`sluice-webhooks: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
