import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';

const execFileP = promisify(execFile);
const NEW_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];

/** PEM file paths of a throwaway PKI for TLS tests on 127.0.0.1. */
export interface TestPki {
  readonly ca: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  /** A second CA that signed nothing here: trusting only it must fail verification. */
  readonly otherCa: string;
  /**
   * A further server certificate signed by the test CA, for the given subjectAltName
   * (`DNS:api.example.test,IP:127.0.0.1`); a name used again replaces the files (a renewal).
   */
  issue(name: string, san: string): Promise<{ cert: string; key: string }>;
  remove(): Promise<void>;
}

/**
 * A CA, a server certificate for IP 127.0.0.1 and a client certificate, both signed by
 * it, made with the openssl CLI (valid for a day, P-256 keys: milliseconds each, where RSA
 * 2048 took 0.2-1 s of CPU apiece). The
 * server certificate may also authenticate clients: a replica or a sentinel presents it
 * when it connects to another server.
 */
export async function makeTestPki(): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-pki-'));
  const f = (name: string): string => join(dir, name);
  const openssl = (...args: string[]) => execFileP('openssl', args, { timeout: 30_000 });
  const ca = async (name: string): Promise<void> => {
    await openssl('req', '-x509', ...NEW_KEY, '-nodes', '-days', '1', '-subj', `/CN=${name}`,
      '-keyout', f(`${name}.key`), '-out', f(`${name}.crt`));
  };
  const leaf = async (name: string, ext: string): Promise<void> => {
    await writeFile(f(`${name}.ext`), `${ext}\n`);
    await openssl('req', ...NEW_KEY, '-nodes', '-subj', `/CN=${name}`, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`));
    // A random serial per certificate, not -CAcreateserial: several issued at once would
    // read and write one serial file together (seen: "Unable to load number from test-ca.srl").
    await openssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('test-ca.crt'), '-CAkey', f('test-ca.key'),
      '-set_serial', `0x${randomBytes(16).toString('hex')}`, '-days', '1', '-extfile', f(`${name}.ext`), '-out', f(`${name}.crt`));
  };
  try {
    await Promise.all([ca('test-ca'), ca('other-ca')]);
    await leaf('server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth');
    await leaf('client', 'extendedKeyUsage=clientAuth');
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    ca: f('test-ca.crt'),
    serverCert: f('server.crt'),
    serverKey: f('server.key'),
    clientCert: f('client.crt'),
    clientKey: f('client.key'),
    otherCa: f('other-ca.crt'),
    async issue(name, san) {
      await leaf(name, `subjectAltName=${san}\nextendedKeyUsage=serverAuth`);
      return { cert: f(`${name}.crt`), key: f(`${name}.key`) };
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
