import type { Logger } from 'pino';
import { readJsonBody } from '../../common/admin/body.js';
import { HttpError } from '../../common/errors.js';
import { schemaChecker } from '../../common/schema-check.js';
import type { KeyState, WebhookKeyring } from '../../common/webhook-keys/keyring.js';
import { withDeadline } from '../../common/deadline.js';
import { sendError, sendHttpError } from '../http/errors.js';
import { answerJson } from '../http/json-answer.js';
import type { RequestContext, Stage } from '../pipeline/context.js';
import { WebhookKeyRotate } from './schema.js';

export const KEY_PATH = '/v1/webhooks/key';
export const ROTATE_PATH = '/v1/webhooks/key/rotate';
const MAX_BODY = 1024;
const checkRotate = schemaChecker(WebhookKeyRotate);

function view(s: KeyState, overlapS: number): object {
  return {
    key: s.key,
    public_key: s.publicKey ?? null,
    created_at: new Date(s.createdAt).toISOString(),
    previous: s.previous === undefined ? null : { created_at: new Date(s.previous.createdAt).toISOString(), expires_at: new Date(s.previous.expiresAt).toISOString() },
    rotation_overlap_seconds: overlapS,
  };
}

/**
 * `GET /v1/webhooks/key` and `POST /v1/webhooks/key/rotate`, answered by the gateway with
 * the caller's own credential: a customer sees and rotates its own webhook signing key,
 * never another's (the customer is the one auth established). After the limits, like
 * /v1/account. The store is given storeTimeoutMs × 4 (a rotation is a few round trips),
 * and never less than a second: a rotation also makes and seals a key pair and, on the
 * memory store, writes files, which a busy host (a CI run) took past 200 ms. Neither
 * call is on the image path, and a customer rotating a key can wait a second.
 */
export function webhookKeyStage(keyring: WebhookKeyring | undefined, overlapS: number, storeTimeoutMs: number, log: Logger): Stage {
  const deadline = Math.max(1000, storeTimeoutMs * 4);
  const fail = (ctx: RequestContext, err: unknown): false => {
    if (err instanceof HttpError) return sendHttpError(ctx, err);
    log.warn({ err: (err as Error).message, request_id: ctx.requestId }, 'webhook key store failed');
    return sendError(ctx, 503, 'unavailable', 'the webhook key store did not answer; retry later', ['retry-after', '1']);
  };
  const rotate = async (ctx: RequestContext, k: WebhookKeyring): Promise<false> => {
    const { overlap_seconds: asked } = await readJsonBody(ctx.req, checkRotate, MAX_BODY);
    if (asked !== undefined && asked > overlapS) throw new HttpError(400, 'bad_request', `overlap_seconds: at most ${overlapS}`, 'overlap_seconds');
    const overlap = asked ?? overlapS;
    const customer = ctx.identity!.customer;
    const s = await withDeadline(k.rotate(customer, overlap * 1000), deadline, 'webhook key rotation');
    log.info({ customer, overlap_s: overlap, request_id: ctx.requestId }, 'webhook key rotated by its customer');
    return answerJson(ctx, 200, view(s, overlapS));
  };
  return (ctx) => {
    const path = ctx.path;
    if ((path !== KEY_PATH && path !== ROTATE_PATH) || ctx.identity === undefined) return true;
    const method = ctx.req.method;
    if (path === KEY_PATH && method !== 'GET' && method !== 'HEAD') return sendError(ctx, 405, 'method_not_allowed', 'use GET', ['allow', 'GET, HEAD']);
    if (path === ROTATE_PATH && method !== 'POST') return sendError(ctx, 405, 'method_not_allowed', 'use POST', ['allow', 'POST']);
    if (keyring === undefined) return sendError(ctx, 503, 'unavailable', 'webhook keys are not enabled on this gateway (no SLUICE_MASTER_KEY)');
    if (path === ROTATE_PATH) return rotate(ctx, keyring).catch((err: unknown) => fail(ctx, err));
    return withDeadline(keyring.state(ctx.identity.customer), deadline, 'webhook key').then(
      (s) => answerJson(ctx, 200, view(s, overlapS)),
      (err: unknown) => fail(ctx, err),
    );
  };
}
