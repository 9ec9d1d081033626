import { sendError } from '../http/errors.js';
import type { RequestContext, Stage } from '../pipeline/context.js';
import { allowed } from './allowlist.js';
import { isFailure, type AuthResult, type Authenticator } from './authenticator.js';
import { clientAddress } from './client-address.js';
import { credentialFrom } from './credential.js';
import type { LastUsed } from './last-used.js';

/**
 * auth: who is calling. Public routes pass; everything else needs a key or a JWT. A key's
 * own terms are checked here, on every request, before any limit is counted: its expiry
 * or rotation grace (401), its client-address allowlist (403), and a rotated key's
 * Deprecation/Sunset headers are added to the answer.
 */
export function authStage(auth: Authenticator, lastUsed: LastUsed, log: { warn(obj: object, msg: string): void }): Stage {
  const settle = (ctx: RequestContext, r: AuthResult): boolean => {
    if (isFailure(r)) return sendError(ctx, 401, 'unauthorized', r.failure);
    const key = r.key;
    if (key !== undefined) {
      const now = Date.now();
      if (now >= key.validUntil) return sendError(ctx, 401, 'unauthorized', key.endMessage);
      if (key.allow !== undefined && !allowed(key.allow, clientAddress(ctx))) {
        ctx.identity = r;
        return sendError(ctx, 403, 'forbidden', 'this API key may not be used from this client address (its allowlist)');
      }
      if (key.headers.length > 0) ctx.limitHeaders.push(...key.headers);
      lastUsed.touch(key.digest, now);
    }
    const allowedPlans = ctx.route!.plans;
    if (allowedPlans !== undefined && !allowedPlans.includes(r.plan.name)) {
      ctx.identity = r;
      return sendError(ctx, 403, 'forbidden', `plan ${r.plan.name} does not include route ${ctx.route!.name}`);
    }
    ctx.identity = r;
    return true;
  };
  return (ctx) => {
    if (ctx.route!.public) return true;
    const cred = credentialFrom(ctx.req.headers);
    if (cred === undefined) {
      return sendError(ctx, 401, 'unauthorized', 'missing credential: send X-API-Key: <key> or Authorization: Bearer <key or JWT>');
    }
    const r = auth.authenticate(cred);
    if (!(r instanceof Promise)) return settle(ctx, r);
    return r.then((res) => settle(ctx, res), (err: unknown) => {
      log.warn({ err: (err as Error).message, request_id: ctx.requestId }, 'credential lookup failed');
      return sendError(ctx, 503, 'unavailable', 'credential store unavailable, try again', ['retry-after', '1']);
    });
  };
}
