import type { Logger } from 'pino';
import type { AuditLog } from '../../common/admin/audit-log.js';
import type { WebhookKeyring } from '../../common/webhook-keys/keyring.js';
import type { SluiceConfig } from '../config/types.js';
import type { Metrics } from '../observe/metrics.js';
import type { Invalidation, Store } from '../store/types.js';

/** What the gateway's admin routes work with; the current generation's, read on each request. */
export interface AdminDeps {
  readonly cfg: SluiceConfig;
  readonly store: Store;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly audit: AuditLog;
  /** Undefined while no master key is set (the webhook key routes then answer 503). */
  readonly webhookKeys: WebhookKeyring | undefined;
  /** Resolves when the store answers; /readyz waits for it at most store.timeout_ms × 4. */
  readonly storeReady: () => Promise<void>;
  /**
   * Drops this process's cached identities. The published invalidation reaches this
   * process too, but only after the admin answer may have gone out; applying it here
   * first makes "the next request" on this gateway see the change.
   */
  readonly invalidate?: (msg: Invalidation) => void;
}

/** Here at once, then every other gateway through the store (after the store write, never before). */
export async function invalidateEverywhere(d: AdminDeps, msg: Invalidation): Promise<void> {
  d.invalidate?.(msg);
  await d.store.publish(msg);
}
