import type { AdminRequest } from './client.js';
import { record, show, table } from './table.js';

type Values = Record<string, string | boolean | undefined>;

/** A bad command line, found before anything is sent. */
export class UsageError extends Error {}

export interface Command {
  /** The words after `sluice admin`, e.g. "keys create". */
  readonly words: string;
  /** Positional arguments after the words, by name. */
  readonly positionals: readonly string[];
  /** This command's own options (strings); the shared ones are in main.ts. */
  readonly options: readonly string[];
  readonly required: readonly string[];
  readonly help: string;
  request(args: Readonly<Record<string, string>>, opts: Values): AdminRequest;
  /** The text shown on success; the same data is printed as JSON under --json. */
  render(body: unknown, args: Readonly<Record<string, string>>): { json: unknown; text: string };
}

const seg = encodeURIComponent;

/** Limit overrides, as flags: --quota-day for quota_day. */
const LIMIT_FLAGS = ['rate', 'burst', 'quota-day', 'quota-month', 'max-inflight', 'max-body-bytes'] as const;

function overridesFrom(opts: Values): Record<string, number> {
  const out: Record<string, number> = {};
  for (const flag of LIMIT_FLAGS) {
    const v = opts[flag];
    if (typeof v !== 'string') continue;
    const n = v.trim() === '' ? NaN : Number(v);
    if (!Number.isFinite(n)) throw new UsageError(`--${flag}: expected a number, got ${JSON.stringify(v)}`);
    out[flag.replaceAll('-', '_')] = n;
  }
  return out;
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** A duration like 30d, 12h, 90m or 3600s, in seconds. */
function seconds(flag: string, v: string): number {
  const m = /^(\d{1,9})([smhd])$/.exec(v.trim());
  if (m === null) throw new UsageError(`--${flag}: expected a duration like 30d, 12h, 90m or 3600s, got ${JSON.stringify(v)}`);
  return Number(m[1]) * UNITS[m[2]!]!;
}

/** --expires: `never` (null), a duration from now, or an ISO 8601 date; Unix ms. */
function expiresAt(v: string | boolean | undefined): number | null | undefined {
  if (typeof v !== 'string') return undefined;
  if (v === 'never') return null;
  if (/^\d+[smhd]$/.test(v.trim())) return Date.now() + seconds('expires', v) * 1000;
  const at = Date.parse(v);
  if (!/^\d{4}-\d\d-\d\d/.test(v) || !Number.isFinite(at)) throw new UsageError(`--expires: expected never, a duration (30d) or an ISO date, got ${JSON.stringify(v)}`);
  return at;
}

/** --allow: comma-separated CIDRs, or `any` (null). */
function allowList(v: string | boolean | undefined): string[] | null | undefined {
  if (typeof v !== 'string') return undefined;
  return v === 'any' ? null : v.split(',').map((c) => c.trim()).filter((c) => c !== '');
}

const when = (ms: number | null | undefined): string => (ms === null || ms === undefined ? '-' : new Date(ms).toISOString());

function customerRecord(body: unknown): string {
  const c = body as { id: string; plan?: string; overrides?: Record<string, unknown> };
  return record([['id', c.id], ['plan', c.plan], ...Object.entries(c.overrides ?? {}).map(([k, v]) => [`overrides.${k}`, v] as const)]);
}

const asIs = (body: unknown): { json: unknown; text: string } => ({ json: body, text: record(Object.entries(body as object)) });

export const COMMANDS: readonly Command[] = [
  {
    words: 'keys create', positionals: [], options: ['customer', 'plan', 'label', 'expires', 'allow'], required: ['customer'],
    help: 'keys create --customer ID [--plan P] [--label TEXT] [--expires 30d|ISO-DATE] [--allow CIDR,...]\n'
      + '                                                       create a key (the plain key is shown this once)',
    request: (_a, o) => {
      const expires = expiresAt(o.expires);
      const allow = allowList(o.allow);
      return {
        method: 'POST', path: '/admin/keys',
        body: {
          customer: o.customer, ...(o.plan === undefined ? {} : { plan: o.plan }), ...(o.label === undefined ? {} : { label: o.label }),
          ...(expires === undefined || expires === null ? {} : { expires_at: expires }), ...(allow === undefined || allow === null ? {} : { allow }),
        },
      };
    },
    render: asIs,
  },
  {
    words: 'keys update', positionals: ['digest'], options: ['label', 'expires', 'allow'], required: [],
    help: 'keys update DIGEST [--label TEXT] [--expires never|30d|ISO-DATE] [--allow any|CIDR,...]\n'
      + '                                                       change a key on every gateway from its next request',
    request: (a, o) => {
      const expires = expiresAt(o.expires);
      const allow = allowList(o.allow);
      return {
        method: 'PATCH', path: `/admin/keys/${seg(a.digest!)}`,
        body: { ...(o.label === undefined ? {} : { label: o.label }), ...(expires === undefined ? {} : { expires_at: expires }), ...(allow === undefined ? {} : { allow }) },
      };
    },
    render: asIs,
  },
  {
    words: 'keys rotate', positionals: ['digest'], options: ['grace'], required: [],
    help: 'keys rotate DIGEST [--grace 1d]                        a new key; the old one works for the grace (default auth.rotation_grace_s)',
    request: (a, o) => ({
      method: 'POST', path: `/admin/keys/${seg(a.digest!)}/rotate`,
      body: typeof o.grace === 'string' ? { grace_seconds: seconds('grace', o.grace) } : {},
    }),
    render: (body) => {
      const b = body as { key: string; digest: string; replaces: { digest: string; grace_until: number } };
      return { json: body, text: record([['key', b.key], ['digest', b.digest], ['replaces', b.replaces.digest], ['old key works until', when(b.replaces.grace_until)]]) };
    },
  },
  {
    words: 'keys list', positionals: [], options: ['customer'], required: [],
    help: 'keys list [--customer ID]                              list keys (digests; every key without --customer)',
    request: (_a, o) => ({ method: 'GET', path: o.customer === undefined ? '/admin/keys' : `/admin/keys?customer=${seg(String(o.customer))}` }),
    render: (body) => {
      const keys = (body as { keys: { digest: string; customer: string; plan?: string; label?: string; created_at: number; status: string; expires_at: number | null; last_used_at: number | null }[] }).keys;
      return {
        json: body,
        text: table(['digest', 'customer', 'plan', 'label', 'created', 'status', 'expires', 'last-used'],
          keys.map((k) => [k.digest, k.customer, show(k.plan), show(k.label), when(k.created_at), k.status, when(k.expires_at), when(k.last_used_at)])),
      };
    },
  },
  {
    words: 'keys revoke', positionals: ['digest'], options: [], required: [],
    help: 'keys revoke DIGEST                                     revoke a key on every gateway',
    request: (a) => ({ method: 'DELETE', path: `/admin/keys/${seg(a.digest!)}` }),
    render: (_b, a) => ({ json: { revoked: a.digest }, text: `revoked ${a.digest}\n` }),
  },
  {
    words: 'customers get', positionals: ['id'], options: [], required: [],
    help: 'customers get ID                                       plan and limit overrides',
    request: (a) => ({ method: 'GET', path: `/admin/customers/${seg(a.id!)}` }),
    render: (body) => ({ json: body, text: customerRecord(body) }),
  },
  {
    words: 'customers set', positionals: ['id'], options: ['plan', ...LIMIT_FLAGS], required: [],
    help: 'customers set ID [--plan P] [--rate N] [--burst N] [--quota-day N] [--quota-month N]\n'
      + '                 [--max-inflight N] [--max-body-bytes N]   replace plan and overrides (unset ones are cleared)',
    request: (a, o) => ({
      method: 'PUT', path: `/admin/customers/${seg(a.id!)}`,
      body: { ...(o.plan === undefined ? {} : { plan: o.plan }), overrides: overridesFrom(o) },
    }),
    render: (body) => ({ json: body, text: customerRecord(body) }),
  },
  {
    words: 'audit', positionals: [], options: ['limit', 'actor', 'action', 'before'], required: [],
    help: 'audit [--limit N] [--actor LABEL] [--action A] [--before ID]   admin changes, newest first',
    request: (_a, o) => {
      const q = new URLSearchParams();
      for (const k of ['limit', 'actor', 'action', 'before'] as const) if (typeof o[k] === 'string') q.set(k, o[k]);
      const qs = q.toString();
      return { method: 'GET', path: qs === '' ? '/admin/audit' : `/admin/audit?${qs}` };
    },
    render: (body) => {
      const entries = (body as { entries: { id: string; at: string; actor: string; source: string; action: string; target: string; details: object }[] }).entries;
      return { json: body, text: table(['at', 'actor', 'source', 'action', 'target', 'details'], entries.map((e) => [e.at, e.actor, e.source, e.action, e.target, JSON.stringify(e.details)])) };
    },
  },
  {
    words: 'webhook-keys rewrap', positionals: [], options: [], required: [],
    help: "webhook-keys rewrap                                    re-encrypt customers' webhook keys under the current SLUICE_MASTER_KEY",
    request: () => ({ method: 'POST', path: '/admin/webhook-keys/rewrap' }),
    render: asIs,
  },
  {
    words: 'usage', positionals: ['customer'], options: [], required: [],
    help: 'usage CUSTOMER                                         requests today and this month, in flight, tokens',
    request: (a) => ({ method: 'GET', path: `/admin/customers/${seg(a.customer!)}/usage` }),
    render: asIs,
  },
];
