import { createServer, type Server, type ServerResponse } from 'node:http';
import { adminRouter, sendJsonText } from '../../common/admin/router.js';
import { AuthThrottle } from '../../common/admin/throttle.js';
import { AdminTokens, type AdminToken } from '../../common/admin/tokens.js';
import type { SluiceConfig } from '../config/types.js';
import type { AdminDeps } from './admin-deps.js';
import { ADMIN_ROUTES } from './routes.js';

export type { AdminDeps } from './admin-deps.js';

/** The config's admin tokens (`token_digest` labelled `admin`, then `tokens`); undefined when there are none. */
export function adminTokensOf(cfg: SluiceConfig): AdminTokens | undefined {
  const list: AdminToken[] = [
    ...(cfg.admin.token_digest === undefined ? [] : [{ label: 'admin', digest: cfg.admin.token_digest }]),
    ...cfg.admin.tokens,
  ];
  return list.length === 0 ? undefined : new AdminTokens(list);
}

export interface AdminServerOptions {
  /**
   * A cluster worker's private admin port, reached only through the primary: the client's
   * address is the X-Forwarded-For the primary sets, not the primary's loopback connection.
   */
  readonly behindPrimary?: boolean;
}

/**
 * The operator's side door on 9090: health, readiness and metrics in the open (bind it
 * to loopback or a private network), the key, customer and audit API behind bearer tokens
 * whose SHA-256 digests are in the config.
 */
export function createAdminServer(deps: AdminDeps, opts: AdminServerOptions = {}): Server {
  // Built once per config: a reload that changes the tokens gets new ones on its first admin request.
  let tokensFor: SluiceConfig | undefined;
  let tokens: AdminTokens | undefined;
  const f = deps.cfg.admin.auth_failures;
  return createServer(adminRouter<AdminDeps>({
    source: 'gateway',
    routes: ADMIN_ROUTES,
    deps: () => deps,
    tokens: () => {
      if (tokensFor !== deps.cfg) { tokensFor = deps.cfg; tokens = adminTokensOf(deps.cfg); }
      return tokens;
    },
    tokenHint: 'set admin.token_digest or admin.tokens',
    // Kept across reloads, so a reload does not forgive a flood.
    throttle: new AuthThrottle({ maxFailures: f.max, windowMs: f.window_ms, maxBackoffMs: f.max_backoff_ms, maxPeers: 10_000 }),
    audit: () => deps.audit,
    log: deps.log,
    trustForwardedPeer: opts.behindPrimary === true,
  }));
}

export function json(res: ServerResponse, status: number, body: unknown): void {
  sendJsonText(res, status, JSON.stringify(body));
}
