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

function customerRecord(body: unknown): string {
  const c = body as { id: string; plan?: string; overrides?: Record<string, unknown> };
  return record([['id', c.id], ['plan', c.plan], ...Object.entries(c.overrides ?? {}).map(([k, v]) => [`overrides.${k}`, v] as const)]);
}

const asIs = (body: unknown): { json: unknown; text: string } => ({ json: body, text: record(Object.entries(body as object)) });

export const COMMANDS: readonly Command[] = [
  {
    words: 'keys create', positionals: [], options: ['customer', 'plan', 'label'], required: ['customer'],
    help: 'keys create --customer ID [--plan P] [--label TEXT]   create a key (the plain key is shown this once)',
    request: (_a, o) => ({
      method: 'POST', path: '/admin/keys',
      body: { customer: o.customer, ...(o.plan === undefined ? {} : { plan: o.plan }), ...(o.label === undefined ? {} : { label: o.label }) },
    }),
    render: asIs,
  },
  {
    words: 'keys list', positionals: [], options: ['customer'], required: [],
    help: 'keys list [--customer ID]                              list keys (digests; every key without --customer)',
    request: (_a, o) => ({ method: 'GET', path: o.customer === undefined ? '/admin/keys' : `/admin/keys?customer=${seg(String(o.customer))}` }),
    render: (body) => {
      const keys = (body as { keys: { digest: string; customer: string; plan?: string; label?: string; created_at: number }[] }).keys;
      return {
        json: body,
        text: table(['digest', 'customer', 'plan', 'label', 'created'],
          keys.map((k) => [k.digest, k.customer, show(k.plan), show(k.label), new Date(k.created_at).toISOString()])),
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
    words: 'usage', positionals: ['customer'], options: [], required: [],
    help: 'usage CUSTOMER                                         requests today and this month, in flight, tokens',
    request: (a) => ({ method: 'GET', path: `/admin/customers/${seg(a.customer!)}/usage` }),
    render: asIs,
  },
];
