import { createPrivateKey, X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { readFileSync } from 'node:fs';
import { isMapping } from '../../common/config-text.js';
import type { Checked } from '../../common/schema-check.js';
import type { ConfigDoc } from '../config/semantics.js';
import { DEFAULT_LISTENER } from '../route/route-table.js';

/** One certificate as the listener uses it: the files it came from, and what they held when the config was read. */
export interface CertificateConfig {
  readonly cert: string;
  readonly key: string;
  /** Lower-case SNI names, exact or `*.suffix`; empty for a first certificate whose SAN names no host (it still answers unknown names). */
  readonly hosts: readonly string[];
  readonly cert_pem: string;
  readonly key_pem: string;
}

export interface TlsConfig {
  readonly certificates: readonly CertificateConfig[];
  readonly min_version: 'TLSv1.2' | 'TLSv1.3';
  readonly ciphers: string;
}

export interface ListenerConfig {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly tls: TlsConfig | undefined;
}


type ListenerDoc = NonNullable<ConfigDoc['listeners']>[number];
type TlsDoc = NonNullable<ListenerDoc['tls']>;

/**
 * The listeners of a schema-checked document, with their certificates read from disk,
 * and every problem with them, each naming its field: a duplicate name or address, a
 * certificate or key that cannot be read or parsed, a key that is not the certificate's,
 * an SNI name served twice, a cipher list OpenSSL refuses. Reading the files here, once,
 * makes the certificates a listener serves exactly the ones `--check` and a reload judged.
 */
export function resolveListeners({ value: c, clean }: Checked<ConfigDoc>): { listeners: ListenerConfig[]; problems: string[] } {
  const problems: string[] = [];
  if (c.listeners === undefined || !Array.isArray(c.listeners)) {
    const server = isMapping(c.server) ? c.server : { host: '127.0.0.1', port: 8080 };
    return { listeners: [{ name: DEFAULT_LISTENER, host: server.host, port: server.port, tls: undefined }], problems };
  }
  const names = new Set<string>();
  const addresses = new Set<string>();
  const listeners: ListenerConfig[] = [];
  c.listeners.forEach((l, i) => {
    const p = `listeners[${i}]`;
    if (!clean(`/listeners/${i}`)) return;
    if (names.has(l.name)) problems.push(`${p}.name: listener ${JSON.stringify(l.name)} is already defined`);
    names.add(l.name);
    const address = `${l.host}:${l.port}`;
    if (l.port !== 0 && addresses.has(address)) problems.push(`${p}.port: ${address} is already a listener's address`);
    addresses.add(address);
    const tls = l.tls === undefined ? undefined : resolveTls(l.tls, `${p}.tls`, problems);
    listeners.push({ name: l.name, host: l.host, port: l.port, tls });
  });
  return { listeners, problems };
}


function resolveTls(t: TlsDoc, p: string, problems: string[]): TlsConfig {
  try {
    createSecureContext({ ciphers: t.ciphers, minVersion: t.min_version });
  } catch (err) {
    problems.push(`${p}.ciphers: OpenSSL refuses this cipher list (${(err as Error).message})`);
  }
  const served = new Map<string, number>();
  const certificates: CertificateConfig[] = [];
  t.certificates.forEach((cert, i) => {
    const cp = `${p}.certificates[${i}]`;
    const got = readCertificate(cert.cert, cert.key, cp, problems);
    if (got === undefined) return;
    const hosts = (cert.hosts ?? got.sanHosts).map((h) => h.toLowerCase());
    if (hosts.length === 0 && i > 0) {
      problems.push(`${cp}.hosts: the certificate names no DNS host in its subjectAltName; give the SNI names it serves`);
    }
    for (const h of hosts) {
      const first = served.get(h);
      if (first !== undefined) problems.push(`${cp}.hosts: ${h} is already served by certificates[${first}]`);
      else served.set(h, i);
    }
    certificates.push({ cert: cert.cert, key: cert.key, hosts, cert_pem: got.certPem, key_pem: got.keyPem });
  });
  return { certificates, min_version: t.min_version, ciphers: t.ciphers };
}

function readCertificate(certFile: string, keyFile: string, p: string, problems: string[]): { certPem: string; keyPem: string; sanHosts: string[] } | undefined {
  const certPem = readPem(certFile, `${p}.cert`, problems);
  const keyPem = readPem(keyFile, `${p}.key`, problems);
  if (certPem === undefined || keyPem === undefined) return undefined;
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(certPem);
  } catch (err) {
    problems.push(`${p}.cert: ${certFile} is not a PEM certificate (${(err as Error).message})`);
    return undefined;
  }
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    problems.push(`${p}.key: ${keyFile} is not an unencrypted PEM private key (${(err as Error).message})`);
    return undefined;
  }
  if (!x509.checkPrivateKey(key)) {
    problems.push(`${p}.key: ${keyFile} is not the private key of the certificate in ${certFile}`);
    return undefined;
  }
  return { certPem, keyPem, sanHosts: sanDnsNames(x509) };
}

function readPem(file: string, p: string, problems: string[]): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    problems.push(`${p}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    return undefined;
  }
}

/** `DNS:a.example.com, DNS:*.b.example.com, IP Address:127.0.0.1` -> the DNS names. */
function sanDnsNames(x509: X509Certificate): string[] {
  const san = x509.subjectAltName;
  if (san === undefined) return [];
  return san.split(', ').filter((e) => e.startsWith('DNS:')).map((e) => e.slice(4));
}
