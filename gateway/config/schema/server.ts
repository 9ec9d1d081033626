import { Type } from '@sinclair/typebox';
import { Section, StringEnum } from '../../../common/schema-types.js';
import { DEFAULT_BODY_RATE } from '../../../common/body-rate.js';
import { RealIp } from './routes.js';

const Port = (def: number, description: string) => Type.Integer({ minimum: 0, maximum: 65535, default: def, description });

export const Server = Section({
  host: Type.String({ default: '127.0.0.1', description: 'Address of the client listener.' }),
  port: Port(8080, 'The client port; 0 picks a free one.'),
  max_header_bytes: Type.Integer({ minimum: 1024, maximum: 1048576, default: 16384, description: 'Larger request heads get 431.' }),
  headers_timeout_ms: Type.Integer({ minimum: 100, default: 10000, description: 'The whole request head must arrive within this (slowloris).' }),
  request_timeout_ms: Type.Integer({ minimum: 100, default: 120000, description: 'The whole request, body included.' }),
  keep_alive_timeout_ms: Type.Integer({ minimum: 100, default: 5000, description: 'Idle client connections are closed after this.' }),
  trust_forwarded: Type.Boolean({ default: false, description: 'Short for real_ip {trusted: [every address], header: x-forwarded-for}: believe any peer\'s X-Forwarded-For (only behind a proxy you run). Ignored when real_ip is given.' }),
  real_ip: Type.Optional(RealIp),
  drain_timeout_ms: Type.Integer({ minimum: 0, default: 30000, description: 'SIGTERM/SIGINT/reload: how long in-flight requests may run on after the listener closes.' }),
  min_body_rate: Type.Integer({ minimum: 0, default: DEFAULT_BODY_RATE.bytesPerSecond,
    description: 'Slowest request body accepted, bytes/s averaged over body_rate_window_ms (0: no check); slower gets 408.' }),
  body_rate_window_ms: Type.Integer({ minimum: 100, default: DEFAULT_BODY_RATE.windowMs, description: 'The window min_body_rate is averaged over.' }),
}, { default: {}, description: 'The client-facing listener and the limits every request meets before any stage runs.' });

const Sha256Hex = (description: string) => Type.String({ pattern: '^[0-9a-f]{64}$', patternErrorMessage: 'must be 64 lower-case hex characters (sha256)', description });

export const AdminTokenEntry = Section({
  label: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$', patternErrorMessage: 'must be 1-64 of A-Z a-z 0-9 . _ @ -',
    description: 'Who holds the token: the name the audit log records for every change made with it.' }),
  digest: Sha256Hex('SHA-256 (hex) of the token; the token itself is never in the config.'),
});

export const Admin = Section({
  host: Type.String({ default: '127.0.0.1', description: 'Address of the admin listener (health, readiness, metrics, admin API).' }),
  port: Port(9090, 'Health, readiness, metrics and the admin API; 0 picks a free one.'),
  token_digest: Type.Optional(Sha256Hex('SHA-256 (hex) of an admin bearer token, audited as `admin`; with neither this nor `tokens` the admin API answers 403.')),
  tokens: Type.Array(AdminTokenEntry, { default: [], description: 'Admin bearer tokens, each with its own label (beside `token_digest`).' }),
  auth_failures: Section({
    max: Type.Integer({ minimum: 1, default: 10, description: 'Wrong tokens one peer address may send within window_ms before it must back off.' }),
    window_ms: Type.Integer({ minimum: 1000, default: 60000, description: 'How long wrong tokens are counted; a quiet window forgets them.' }),
    max_backoff_ms: Type.Integer({ minimum: 1000, default: 60000, description: 'Longest wait imposed: 1 s after the first refusal past `max`, doubling with each further one.' }),
  }, { default: {}, description: 'Slows a flood of wrong admin tokens: past `max`, the peer gets 429 with Retry-After, its token unchecked, until its backoff ends.' }),
  audit_retention_days: Type.Integer({ minimum: 1, maximum: 3650, default: 90, description: 'How long admin changes are kept in the audit log.' }),
}, { default: {}, description: 'The admin listener: /healthz, /readyz, /metrics and /admin/*.' });

export const SpawnBackend = Section({
  port: Type.Integer({ minimum: 1, maximum: 65535, description: 'The port the started sluice-backend listens on (127.0.0.1).' }),
});

export const Shed = Section({
  max_inflight: Type.Integer({ minimum: 0, default: 0, description: 'Requests open in this process (per worker) at which shedding starts; 0: off.' }),
  max_event_loop_delay_ms: Type.Number({ minimum: 0, default: 0, description: 'Mean event-loop delay over one sample window at which shedding starts; 0: off.' }),
  // Below ~10 ms the delay histogram has too few samples per window to mean anything.
  sample_interval_ms: Type.Integer({ minimum: 10, maximum: 10000, default: 100, description: 'How often the loop delay is read and the shed level reconsidered.' }),
  retry_after_s: Type.Integer({ minimum: 0, maximum: 3600, default: 1, description: 'Retry-After on a shed request.' }),
}, { default: {}, description: 'Priority load shedding: past a threshold, the lowest-priority plans get 503 overloaded first.' });

export const Log = Section({
  level: StringEnum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, { default: 'info', description: 'Lowest level written (pino JSON lines on stdout).' }),
  access: Type.Boolean({ default: true, description: 'One line per request.' }),
}, { default: {}, description: 'Logs: pino JSON lines on stdout.' });
