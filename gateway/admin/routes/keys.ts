import { HttpError } from '../../../common/errors.js';
import { readJsonBody } from '../../../common/admin/body.js';
import type { AdminRoute } from '../../../common/admin/router.js';
import { schemaChecker } from '../../../common/schema-check.js';
import { cidrProblem } from '../../auth/allowlist.js';
import { keyDigest } from '../../auth/digest.js';
import { mintKey } from '../../auth/key-format.js';
import type { KeyRecord } from '../../store/types.js';
import { CustomerId, Digest, KeyCreate, KeyPatch, KeyRotate } from '../admin-schemas.js';
import { invalidateEverywhere, type AdminDeps } from '../admin-deps.js';

// API keys: create, list, change, rotate, revoke. The plain key is in the answer that
// creates it and nowhere else; the audit log names a key by the first 12 hex of its digest.

const checkCreate = schemaChecker(KeyCreate);
const checkPatch = schemaChecker(KeyPatch);
const checkRotate = schemaChecker(KeyRotate);
const DIGEST = new RegExp(Digest.pattern!);
const ERROR = 'Error';

export const keyId = (digest: string): string => digest.slice(0, 12);

function checkAllow(allow: readonly string[] | null | undefined): void {
  const problems = (allow ?? []).map(cidrProblem).filter((p) => p !== undefined);
  if (problems.length > 0) throw new HttpError(400, 'bad_request', `allow: ${problems.join('; ')}`, 'allow');
}

function status(k: KeyRecord, now: number): 'active' | 'rotated' | 'expired' {
  if (now >= Math.min(k.expiresAt ?? Infinity, k.graceUntil ?? Infinity)) return 'expired';
  return k.rotatedAt === undefined ? 'active' : 'rotated';
}

/** A key as the API shows it: everything but the key. */
export function keyView(k: KeyRecord, now = Date.now()): Record<string, unknown> {
  return {
    digest: k.digest, customer: k.customer, plan: k.plan, label: k.label, created_at: k.createdAt,
    expires_at: k.expiresAt ?? null, allow: k.allow ?? null, status: status(k, now), rotated_at: k.rotatedAt ?? null,
    grace_until: k.graceUntil ?? null, replaced_by: k.replacedBy ?? null, last_used_at: k.lastUsedAt ?? null,
  };
}

function digestParam(d: AdminDeps, digest: string): string {
  if (!DIGEST.test(digest)) throw new HttpError(400, 'bad_request', 'key digest must be 64 lower-case hex characters');
  if (d.cfg.auth.keys.some((k) => k.digest === digest)) throw new HttpError(409, 'conflict', 'this key is defined in the config file; change it there');
  return digest;
}

async function existing(d: AdminDeps, digest: string): Promise<KeyRecord> {
  const rec = await d.store.findKey(digestParam(d, digest));
  if (rec === undefined) throw new HttpError(404, 'not_found', 'no such key');
  return rec;
}

/** A new key for this customer, saved; the plain key returned beside its record. */
async function newKey(d: AdminDeps, fields: Omit<KeyRecord, 'digest' | 'createdAt'>): Promise<{ key: string; record: KeyRecord }> {
  const key = mintKey(d.cfg.auth.key_environment);
  const record: KeyRecord = { ...fields, digest: keyDigest(key, d.cfg.auth.pepper), createdAt: Date.now() };
  await d.store.saveKey(record);
  return { key, record };
}

const digestPath = { name: 'digest', in: 'path' as const, schema: Digest };

export const createKey: AdminRoute<AdminDeps> = {
  method: 'POST',
  path: '/admin/keys',
  doc: {
    operationId: 'createKey', summary: 'Create an API key (`sluice_<environment>_...`). The plain key is in this response only.', body: 'KeyCreate',
    responses: {
      201: { description: 'Created.', schema: 'KeyCreated' },
      400: { description: 'Bad field, unknown field, unknown plan, bad CIDR, or no plan for a customer that has none (`bad_request`).', schema: ERROR },
    },
  },
  async handle(call, d) {
    const b = await readJsonBody(call.req, checkCreate);
    if (b.plan !== undefined && !d.cfg.plans.has(b.plan)) throw new HttpError(400, 'bad_request', `plan: unknown plan ${b.plan}`);
    // A key whose customer has no plan either would be refused on every request: say so now.
    if (b.plan === undefined && (d.cfg.customers.get(b.customer)?.plan ?? (await d.store.findCustomer(b.customer))?.plan) === undefined) {
      throw new HttpError(400, 'bad_request', `plan: required, customer ${b.customer} has no plan (pass plan, or PUT /admin/customers/${b.customer} with one first)`);
    }
    checkAllow(b.allow);
    const { key, record } = await newKey(d, { customer: b.customer, plan: b.plan, label: b.label, expiresAt: b.expires_at, allow: b.allow });
    await call.audit({ action: 'key.create', target: keyId(record.digest), details: { customer: b.customer, plan: b.plan, label: b.label, expires_at: b.expires_at, allow: b.allow } });
    d.log.info({ customer: b.customer, plan: b.plan, digest: keyId(record.digest) }, 'api key created');
    const v = keyView(record);
    return { status: 201, body: { key, digest: v.digest, customer: v.customer, plan: v.plan, label: v.label, created_at: v.created_at, expires_at: v.expires_at, allow: v.allow } };
  },
};

export const listKeys: AdminRoute<AdminDeps> = {
  method: 'GET',
  path: '/admin/keys',
  doc: {
    operationId: 'listKeys', summary: 'List keys created through this API (digests, never plain keys), with their status and last use.',
    parameters: [{ name: 'customer', in: 'query', schema: CustomerId, description: "Only this customer's keys; without it, every key." }],
    responses: { 200: { description: 'The keys.', schema: 'KeyList' } },
  },
  async handle(call, d) {
    const keys = await d.store.listKeys(call.query.get('customer') ?? undefined);
    const now = Date.now();
    return { status: 200, body: { keys: keys.map((k) => keyView(k, now)) } };
  },
};

export const patchKey: AdminRoute<AdminDeps> = {
  method: 'PATCH',
  path: '/admin/keys/{digest}',
  doc: {
    operationId: 'updateKey', summary: "Change a key's label, expiry or allowlist; every gateway applies it from the next request.", body: 'KeyPatch',
    parameters: [digestPath],
    responses: {
      200: { description: 'The key now.', schema: 'Key' },
      400: { description: 'Bad digest, field or CIDR (`bad_request`).', schema: ERROR },
      404: { description: 'No such key (`not_found`).', schema: ERROR },
      409: { description: 'The key is defined in the config file (`conflict`).', schema: ERROR },
    },
  },
  async handle(call, d) {
    const rec = await existing(d, call.params.digest!);
    const b = await readJsonBody(call.req, checkPatch);
    checkAllow(b.allow);
    const next: KeyRecord = {
      ...rec,
      ...(b.label === undefined ? {} : { label: b.label }),
      ...(b.expires_at === undefined ? {} : { expiresAt: b.expires_at ?? undefined }),
      ...(b.allow === undefined ? {} : { allow: b.allow ?? undefined }),
    };
    await d.store.saveKey(next);
    await invalidateEverywhere(d, { kind: 'key', digest: rec.digest });
    await call.audit({ action: 'key.update', target: keyId(rec.digest), details: { customer: rec.customer, ...b } });
    return { status: 200, body: keyView(next) };
  },
};

export const rotateKey: AdminRoute<AdminDeps> = {
  method: 'POST',
  path: '/admin/keys/{digest}/rotate',
  doc: {
    operationId: 'rotateKey',
    summary: 'Replace a key with a new one (same customer, plan, label, expiry, allowlist). The old key keeps working for the grace period, its answers carrying Deprecation and Sunset, then gets 401.',
    body: 'KeyRotate',
    parameters: [digestPath],
    responses: {
      201: { description: 'The new key (shown once) and when the old one stops.', schema: 'KeyRotated' },
      400: { description: 'Bad digest, or a grace longer than auth.rotation_grace_s (`bad_request`).', schema: ERROR },
      404: { description: 'No such key (`not_found`).', schema: ERROR },
      409: { description: 'The key is in the config file, already rotated, or expired (`conflict`).', schema: ERROR },
    },
  },
  async handle(call, d) {
    const old = await existing(d, call.params.digest!);
    const b = await readJsonBody(call.req, checkRotate);
    const max = d.cfg.auth.rotation_grace_s;
    const grace = b.grace_seconds ?? max;
    if (grace > max) throw new HttpError(400, 'bad_request', `grace_seconds: at most ${max} (auth.rotation_grace_s)`, 'grace_seconds');
    const now = Date.now();
    if (old.replacedBy !== undefined) throw new HttpError(409, 'conflict', `this key was already rotated (replaced by ${keyId(old.replacedBy)})`);
    if (status(old, now) === 'expired') throw new HttpError(409, 'conflict', 'this key has expired; create a new one');
    // The new key first, so that at no moment does the customer hold no working key.
    const { key, record } = await newKey(d, { customer: old.customer, plan: old.plan, label: old.label, expiresAt: old.expiresAt, allow: old.allow });
    const graceUntil = now + grace * 1000;
    await d.store.saveKey({ ...old, rotatedAt: now, graceUntil, replacedBy: record.digest });
    await invalidateEverywhere(d, { kind: 'key', digest: old.digest });
    await call.audit({ action: 'key.rotate', target: keyId(old.digest), details: { customer: old.customer, new_key: keyId(record.digest), grace_seconds: grace } });
    d.log.info({ customer: old.customer, digest: keyId(old.digest), new_digest: keyId(record.digest), grace_s: grace }, 'api key rotated');
    const v = keyView(record, now);
    return {
      status: 201,
      body: {
        key, digest: v.digest, customer: v.customer, plan: v.plan, label: v.label, created_at: v.created_at, expires_at: v.expires_at, allow: v.allow,
        replaces: { digest: old.digest, grace_until: graceUntil },
      },
    };
  },
};

export const revokeKey: AdminRoute<AdminDeps> = {
  method: 'DELETE',
  path: '/admin/keys/{digest}',
  doc: {
    operationId: 'revokeKey', summary: 'Revoke a key at once; every gateway sharing the store drops it from its cache.',
    parameters: [digestPath],
    responses: {
      204: { description: 'Revoked.' },
      400: { description: 'Not 64 lower-case hex characters (`bad_request`).', schema: ERROR },
      404: { description: 'No such key (`not_found`).', schema: ERROR },
      409: { description: 'The key is defined in the config file (`conflict`).', schema: ERROR },
    },
  },
  async handle(call, d) {
    const digest = digestParam(d, call.params.digest!);
    const rec = await d.store.findKey(digest);
    if (rec === undefined || !(await d.store.revokeKey(digest))) throw new HttpError(404, 'not_found', 'no such key');
    await invalidateEverywhere(d, { kind: 'key', digest });
    await call.audit({ action: 'key.revoke', target: keyId(digest), details: { customer: rec.customer } });
    d.log.info({ digest: keyId(digest) }, 'api key revoked');
    return { status: 204 };
  },
};
