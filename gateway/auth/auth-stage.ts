import { sendError } from '../http/errors.js';
import type { RequestContext, Stage } from '../pipeline/context.js';
import { isFailure, type AuthResult, type Authenticator } from './authenticator.js';
import { credentialFrom } from './credential.js';

/** auth: who is calling. Public routes pass; everything else needs a key or a JWT. */
export function authStage(auth: Authenticator, log: { warn(obj: object, msg: string): void }): Stage {
  const settle = (ctx: RequestContext, r: AuthResult): boolean => {
    if (isFailure(r)) return sendError(ctx, 401, 'unauthorized', r.failure);
    const allowed = ctx.route!.plans;
    if (allowed !== undefined && !allowed.includes(r.plan.name)) {
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
