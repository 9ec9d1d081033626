import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import type { TlsConfig } from './listener-config.js';

/** One listener's certificates, ready to hand out: the default's options and the SNI lookup. */
export interface TlsContexts {
  /** The first certificate with the listener's protocol settings (tls.Server options, setSecureContext). */
  readonly defaults: SecureContextOptions;
  /** The context for an SNI name: exact name, then `*.` one label up, then the default. */
  select(servername: string): SecureContext;
}

/**
 * Built once per config: a handshake costs one or two map lookups. Every context gets
 * the listener's minimum version and ciphers, since OpenSSL may take either from the
 * context SNI switches to.
 */
export function tlsContexts(tls: TlsConfig): TlsContexts {
  const base: SecureContextOptions = { minVersion: tls.min_version, ciphers: tls.ciphers, honorCipherOrder: true };
  const exact = new Map<string, SecureContext>();
  const wildcard = new Map<string, SecureContext>();
  const contexts = tls.certificates.map((c) => {
    const ctx = createSecureContext({ ...base, cert: c.cert_pem, key: c.key_pem });
    for (const h of c.hosts) {
      if (h.startsWith('*.')) wildcard.set(h.slice(1), ctx);
      else exact.set(h, ctx);
    }
    return ctx;
  });
  const first = tls.certificates[0]!;
  const fallback = contexts[0]!;
  return {
    defaults: { ...base, cert: first.cert_pem, key: first.key_pem },
    select(servername) {
      const name = servername.toLowerCase();
      const hit = exact.get(name);
      if (hit !== undefined) return hit;
      const dot = name.indexOf('.');
      return (dot > 0 ? wildcard.get(name.slice(dot)) : undefined) ?? fallback;
    },
  };
}
