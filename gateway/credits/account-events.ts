import type { Logger } from 'pino';
import type { StoreConfig } from '../config/types.js';
import type { WebhookEnqueuer } from '../../backends/webhooks/queue.js';

/**
 * Events about a customer's account (quota.threshold) for the customer's webhook_url,
 * through the durable webhook pipeline the image backends use: a BullMQ job in the
 * store's Redis, delivered, signed and retried by `sluice-webhooks`
 * (backends/README.md#webhooks), signed with the customer's own webhook keys at send time
 * like every delivery (docs/security.md#webhook-keys).
 */
export interface AccountEvents {
  /** Enqueues in the background; never throws. */
  send(customer: string, url: string, payload: object): void;
  close(): Promise<void>;
}

/**
 * On a Redis store, the queue's client is opened on the first event: a gateway whose
 * customers never cross a threshold holds no extra connection. undefined on the memory
 * store, which has no durable pipeline (the crossing is then only logged).
 */
export function accountEvents(store: StoreConfig, log: Logger): AccountEvents | undefined {
  if (store.kind !== 'redis') return undefined;
  let enqueuer: Promise<WebhookEnqueuer> | undefined;
  return {
    send(customer, url, payload) {
      // Loaded only when used: BullMQ is large, and most gateways never send an event.
      enqueuer ??= import('../../backends/webhooks/queue.js').then((q) => q.createWebhookEnqueuer({ store, log }));
      enqueuer.then((e) => e.send(customer, url, payload, 0), (err: unknown) => log.error({ customer, err: (err as Error).message }, 'account events: webhook queue unavailable'));
    },
    async close() {
      await (await enqueuer?.catch(() => undefined))?.close(2000);
    },
  };
}
