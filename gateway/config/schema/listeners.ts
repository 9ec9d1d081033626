import { Type } from '@sinclair/typebox';
import { Section, StringEnum } from '../../../common/schema-types.js';
import { DEFAULT_CIPHERS } from '../../listen/tls-defaults.js';

// The sockets the gateway accepts clients on (docs/listeners.md). Absent, the gateway has
// one plain listener, "default", on server.host/server.port.

const Host = Type.String({
  pattern: '^(\\*\\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$',
  patternErrorMessage: 'must be a host name like api.example.com, or *.example.com for one label under it',
});

export const TlsCertificate = Section({
  cert: Type.String({ minLength: 1, description: 'PEM certificate file: the leaf first, then its intermediates. A relative path is from the working directory.' }),
  key: Type.String({ minLength: 1, description: 'PEM private key file (unencrypted) of the certificate.' }),
  hosts: Type.Optional(Type.Array(Host, { minItems: 1,
    description: "SNI names this certificate answers: exact, or *.example.com (one label). Default: the certificate's subjectAltName DNS names." })),
}, { description: 'One certificate and its key.' });

export const Tls = Section({
  certificates: Type.Array(TlsCertificate, { minItems: 1,
    description: 'Chosen by the SNI name the client sends (exact names before wildcards); the first also answers an unknown or absent name.' }),
  min_version: StringEnum(['TLSv1.2', 'TLSv1.3'] as const, { default: 'TLSv1.2', description: 'Oldest protocol accepted; older handshakes are refused.' }),
  ciphers: Type.String({ minLength: 1, default: DEFAULT_CIPHERS,
    description: 'OpenSSL cipher list (TLS 1.3 suites included, as TLS_* names). Default: the TLS 1.3 suites and ECDHE with AES-GCM or ChaCha20-Poly1305 for TLS 1.2.' }),
}, { description: 'Terminate TLS on this listener (certificates reload on SIGHUP).' });

export const Listener = Section({
  name: Type.String({ pattern: '^[A-Za-z0-9_.-]+$', patternErrorMessage: 'may use letters, digits, _, . and - only',
    description: "What virtual hosts and logs call this listener (virtual_hosts[].listeners)." }),
  host: Type.String({ default: '127.0.0.1', description: 'The address to listen on (0.0.0.0 or :: for every interface).' }),
  port: Type.Integer({ minimum: 0, maximum: 65535, description: 'The client port; 0 picks a free one.' }),
  tls: Type.Optional(Tls),
}, { description: 'One socket clients connect to, plain or TLS.' });

export const Listeners = Type.Optional(Type.Array(Listener, { minItems: 1,
  description: 'The sockets clients connect to; every worker serves every listener. Absent: one plain listener named "default" on server.host:server.port (which are then not used).' }));
