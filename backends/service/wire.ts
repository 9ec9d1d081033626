import type { Logger } from 'pino';
import { parseFetchRequest, parseOptionsHeader } from '../image/options.js';
import { processImage } from '../image/process.js';
import { sniff } from '../image/sniff.js';
import { putToCustomerBucket } from '../net/customer-bucket.js';
import { safeFetch } from '../net/safe-fetch.js';
import { createWebhookSender } from '../net/webhooks.js';
import { createWebhookEnqueuer } from '../webhooks/queue.js';
import type { BackendConfig } from './config.js';
import { createImageService, type ImageService } from './server.js';

import type { FaceDetectorHandle } from '../faces/face-detector.js';
import { createRedisClient } from '../../common/redis-client.js';
import { WebhookKeyring } from '../../common/webhook-keys/keyring.js';
import { DirKeyringStorage, RedisKeyringStorage } from '../../common/webhook-keys/storage.js';
import type { WebhookKeys } from '../net/webhook-signing.js';

/** The customers' keys for in-process delivery, or undefined when this backend has no keyring or no master key; close() drops its connection. */
function signingKeys(cfg: BackendConfig): { keys: (customer: string) => Promise<WebhookKeys>; close(): void } | undefined {
  const { keyring: source, master } = cfg.webhook;
  if (source === undefined || master === undefined) return undefined;
  if (source.kind === 'dir') {
    const keyring = new WebhookKeyring(new DirKeyringStorage(source.dir), master);
    return { keys: (customer) => keyring.signingKeys(customer), close: () => {} };
  }
  const client = createRedisClient(source.store, { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectionName: 'sluice-backend-keys' });
  client.on('error', () => {});
  const keyring = new WebhookKeyring(new RedisKeyringStorage(client, source.store.prefix), master);
  return { keys: (customer) => keyring.signingKeys(customer), close: () => client.disconnect() };
}

/** The service wired to the real processing, detection, fetch and webhook modules. */
export async function createBackend(cfg: BackendConfig, log: Logger): Promise<ImageService> {
  let faces: FaceDetectorHandle | undefined;
  if (cfg.faceWorkers > 0) {
    // Loaded lazily so a backend with --face-workers 0 never pays for TensorFlow.
    const { createFaceDetector } = await import('../faces/face-detector.js');
    faces = await createFaceDetector({ workers: cfg.faceWorkers, maxInputPixels: cfg.limits.maxInputPixels });
  }
  const detectFaces = faces?.detect;
  let onWebhook: (outcome: 'delivered' | 'failed' | 'enqueued' | 'dropped') => void = () => {};
  const keyring = cfg.webhook.queue === undefined ? signingKeys(cfg) : undefined;
  const webhooks = cfg.webhook.queue !== undefined
    ? createWebhookEnqueuer({ store: cfg.webhook.queue, log, onResult: (ok) => onWebhook(ok ? 'enqueued' : 'dropped') })
    : keyring === undefined ? undefined : createWebhookSender({
      signingKeys: keyring.keys,
      maxAttempts: cfg.webhook.maxAttempts,
      baseDelayMs: cfg.webhook.baseDelayMs,
      timeoutMs: cfg.webhook.timeoutMs,
      allow: cfg.fetch.allow,
      onOutcome: (o) => {
        onWebhook(o.ok ? 'delivered' : 'failed');
        if (!o.ok) log.warn({ url: o.url, attempts: o.attempts, status: o.status, error: o.error }, 'webhook delivery failed');
      },
    });
  let svc: ImageService;
  try {
    svc = await createImageService({
      process: (input, opts, limits, watermarks, accepted) => processImage(input, opts, limits, detectFaces, watermarks, accepted),
      // The detector decodes whatever it gets: the same type and pixel checks as /v1/images first.
      detect: detectFaces === undefined ? undefined : async (input) => {
        await sniff(input, cfg.limits);
        return detectFaces(input);
      },
      fetch: (url) => safeFetch(url, {
        maxBytes: cfg.fetch.maxBytes, timeoutMs: cfg.fetch.timeoutMs, maxRedirects: cfg.fetch.maxRedirects, allow: cfg.fetch.allow,
      }),
      parseFetchRequest,
      parseOptionsHeader,
      storeOutput: (target, data, contentType) => putToCustomerBucket(target, data, contentType, { allow: cfg.fetch.allow, timeoutMs: cfg.fetch.timeoutMs }),
      webhooks,
      log,
    }, {
      concurrency: cfg.concurrency,
      queue: cfg.queue,
      retryAfterSeconds: cfg.retryAfterSeconds,
      limits: cfg.limits,
      resultsDir: cfg.resultsDir,
      resultsS3: cfg.resultsS3,
      resultTtlSeconds: cfg.resultTtlSeconds,
      watermarksDir: cfg.watermarksDir,
      watermarkLimits: cfg.watermarkLimits,
      bodyRate: cfg.bodyRate,
    });
  } catch (err) {
    await webhooks?.close();
    keyring?.close();
    await faces?.close();
    throw err;
  }
  onWebhook = (outcome) => svc.metrics.webhooks.labels(outcome).inc();
  const closeService = svc.close.bind(svc);
  return { ...svc, close: async () => { await closeService(); keyring?.close(); await faces?.close(); } };
}
