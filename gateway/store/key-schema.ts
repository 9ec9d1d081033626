import { createHash } from 'node:crypto';

// Every Redis key Sluice (and the nginx module) uses; lua-compat/README.md documents
// the same list. Limit keys carry the subject as a hash tag so one request's keys sit
// in one Cluster slot and one EVALSHA can touch them all. The upstream registry's keys
// are in common/registry.ts, which the backends use too.

export interface KeySchema {
  bucket(subject: string): string;
  counters(subject: string): string;
  leases(subject: string): string;
  key(digest: string): string;
  /** nginx limit_req state of one zone for one key value (the value is hashed: it may be an API key). */
  limitReq(zone: string, key: string): string;
  /** nginx limit_conn leases of one zone for one key value (hashed the same way). */
  limitConn(zone: string, key: string): string;
  customerKeys(customer: string): string;
  customer(id: string): string;
  readonly invalidations: string;
  /** Live gateways (heartbeats), for sizing fail-open fallback buckets. */
  readonly instances: string;
  /** A customer's usage counters of one UTC day (`date`: yyyy-mm-dd). */
  usage(customer: string, date: string): string;
  /** The customers with usage on one UTC day. */
  usageIndex(date: string): string;
  /** Set once a subject crossed `percent` of a quota in a period (`period`: d<yyyy-mm-dd> or m<yyyy-mm>). */
  quotaMark(subject: string, period: string, percent: number): string;
  /** A customer's Idempotency-Key record (the key is hashed: it is the client's text). */
  idempotency(customer: string, key: string): string;
}

export function keySchema(prefix: string): KeySchema {
  return {
    bucket: (s) => `${prefix}rl:{${s}}:tb`,
    counters: (s) => `${prefix}rl:{${s}}:q`,
    leases: (s) => `${prefix}rl:{${s}}:if`,
    key: (digest) => `${prefix}key:${digest}`,
    limitReq: (zone, key) => `${prefix}lr:${zone}:{${limitReqKeyHash(key)}}`,
    limitConn: (zone, key) => `${prefix}lc:${zone}:{${limitReqKeyHash(key)}}`,
    customerKeys: (c) => `${prefix}cust:{${c}}:keys`,
    customer: (id) => `${prefix}cust:{${id}}`,
    invalidations: `${prefix}invalidate`,
    instances: `${prefix}instances`,
    usage: (c, date) => `${prefix}usage:{${c}}:${date}`,
    usageIndex: (date) => `${prefix}usage:idx:${date}`,
    quotaMark: (s, period, percent) => `${prefix}qw:{${s}}:${period}:${percent}`,
    idempotency: (c, key) => `${prefix}idem:{${c}}:${limitReqKeyHash(key)}`,
  };
}

/** First 32 hex chars of SHA-256 of the zone key's value (UTF-8), as the nginx module computes it too. */
export function limitReqKeyHash(value: string): string {
  return createHash('sha256').update(value).digest('hex').slice(0, 32);
}

/**
 * The Cluster slot of a key (CRC16/XMODEM of its hash tag, or of the whole key, mod 16384),
 * as redis-server computes it. Not the `cluster-key-slot` package ioredis routes with: it
 * gives another slot than redis-server for keys like `{}{x}` (an empty first tag, where
 * Redis hashes the whole key), as store.contract.test.ts shows against CLUSTER
 * KEYSLOT. The store checks a multi-key script's keys with it before
 * sending: ioredis fails a cross-slot command together with every command auto-pipelined
 * alongside it, i.e. other requests' limits too.
 */
export function clusterSlot(key: string): number {
  let bytes = Buffer.from(key, 'utf8');
  const open = bytes.indexOf(0x7b); // {
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1); // }
    if (close > open + 1) bytes = bytes.subarray(open + 1, close);
  }
  let crc = 0;
  for (const b of bytes) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}
