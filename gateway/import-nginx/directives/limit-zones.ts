// limit_req_zone / limit_conn_zone → limit_req_zones / limit_conn_zones.

import type { Context } from '../context.js';
import type { Directive } from '../parse.js';
import type { Scope, ZoneKey } from '../scope.js';
import type { DirectiveHandler } from '../table.js';

/** The key of a zone: the client address or one request header; anything else is reported. */
export function zoneKey(key: string): ZoneKey | undefined {
  if (key === '$binary_remote_addr' || key === '$remote_addr') return { kind: 'client' };
  const m = /^\$http_([a-z0-9_]+)$/i.exec(key);
  if (m !== null) return { kind: 'header', header: m[1]!.toLowerCase().replace(/_/g, '-') };
  return undefined;
}

const KEY_REASON = (key: string): string => `key ${JSON.stringify(key)}: Sluice keys a zone by the client address ($binary_remote_addr, $remote_addr) or one request header ($http_NAME) only`;

const zoneArg = (d: Directive): string | undefined => d.args.find((a) => a.startsWith('zone='));

function bad(cx: Context, scope: Scope, d: Directive, reason: string): void {
  cx.list(scope, d, reason);
  const name = zoneArg(d)?.slice(5).split(':')[0];
  if (name !== undefined) cx.badZones.set(name, cx.at(d));
}

export const limitReqZone: DirectiveHandler = {
  names: ['limit_req_zone'],
  levels: ['http'],
  handle(d, scope, cx) {
    const z = zoneArg(d);
    const name = z?.slice(5).split(':')[0];
    const rate = d.args.find((a) => a.startsWith('rate='));
    const rm = rate === undefined ? null : /^rate=(\d+)r\/([sm])$/.exec(rate);
    if (name === undefined || rm === null || d.args.length < 3) return bad(cx, scope, d, 'expected: limit_req_zone KEY zone=NAME:SIZE rate=Nr/s|Nr/m');
    const extra = d.args.slice(1).filter((a) => !a.startsWith('zone=') && !a.startsWith('rate='));
    if (extra.length > 0) return bad(cx, scope, d, `${extra.join(' ')}: zone synchronisation between nginx instances has no Sluice equivalent (share a Redis store instead)`);
    const key = zoneKey(d.args[0]!);
    if (key === undefined) return bad(cx, scope, d, KEY_REASON(d.args[0]!));
    cx.reqZones.push({ name, key, rate: Number(rm[1]), per: rm[2] as 's' | 'm', size: z!.split(':')[1], at: cx.at(d) });
    cx.ok();
  },
};

export const limitConnZone: DirectiveHandler = {
  names: ['limit_conn_zone'],
  levels: ['http'],
  handle(d, scope, cx) {
    const z = zoneArg(d);
    const name = z?.slice(5).split(':')[0];
    if (name === undefined || d.args.length !== 2) return bad(cx, scope, d, 'expected: limit_conn_zone KEY zone=NAME:SIZE');
    const key = zoneKey(d.args[0]!);
    if (key === undefined) return bad(cx, scope, d, KEY_REASON(d.args[0]!));
    cx.connZones.push({ name, key, size: z!.split(':')[1], at: cx.at(d) });
    cx.ok();
  },
};
