import { isDeepStrictEqual } from 'node:util';
import type { ConfigDoc } from '../config/semantics.js';
import type { RouteDoc } from '../config/schema/routes.js';
import { parseCidr } from '../http/ip-address.js';
import { accessRuleProblem } from './access.js';
import { headerConditionProblem } from './conditions.js';
import { headerEditsProblem, RESERVED_REQUEST, RESERVED_RESPONSE } from './header-edits.js';
import { returnProblem } from './local-answer.js';
import { compileRegex, groupCount } from './regex.js';
import { rewriteProblem } from './rewrite.js';
import { DEFAULT_LISTENER } from './route-table.js';
import { nameKey, parseServerName } from './server-names.js';
import { compileTemplate, type TemplateMode } from './template.js';

// What the schema cannot say about routes, virtual hosts and real_ip, each problem
// naming its field: a route matches on exactly one path form; nested routes stay inside
// their parent, as nginx requires; two routes of one list that claim the same path, where
// the later could never be chosen, conflict; regexes compile for the linear-time engine;
// templates use known variables; every route ends up with an action.

type Problems = string[];
type Mapping = Record<string, unknown>;

const isMapping = (v: unknown): v is Mapping => typeof v === 'object' && v !== null && !Array.isArray(v);
const mappings = <T>(v: unknown): T[] => (Array.isArray(v) ? v.filter(isMapping) as T[] : []);

export function routeProblems(c: ConfigDoc): Problems {
  const out: Problems = [];
  const top = mappings<RouteDoc>(c.routes);
  const vhosts = mappings<Mapping>(c.virtual_hosts);
  if (top.length === 0 && vhosts.every((v) => mappings(v.routes).length === 0)) out.push('routes: needs at least one route (here or in virtual_hosts)');
  out.push(...listProblems(top, 'routes', undefined, false));
  vhosts.forEach((v, i) => out.push(...listProblems(mappings<RouteDoc>(v.routes), `virtual_hosts[${i}].routes`, undefined, false)));
  out.push(...virtualHostProblems(vhosts, listenerNames(c)));
  if (isMapping(c.server) && isMapping(c.server.real_ip)) {
    const trusted = c.server.real_ip.trusted;
    if (Array.isArray(trusted)) {
      trusted.forEach((t, i) => {
        const p = typeof t === 'string' ? parseCidr(t) : undefined;
        if (typeof p === 'string') out.push(`server.real_ip.trusted[${i}]: ${p}`);
      });
    }
  }
  return out;
}

/** The listener names a config has: the edge's `listeners`, else the one plain listener. */
function listenerNames(c: ConfigDoc): Set<string> {
  const listeners = (c as { listeners?: unknown }).listeners;
  const named = mappings<{ name?: unknown }>(listeners).map((l) => l.name).filter((n): n is string => typeof n === 'string');
  return new Set(named.length > 0 ? named : [DEFAULT_LISTENER]);
}

/** One list of sibling routes (a virtual host's, or nested in `parent`). `inheritsAction`: the parent has an action. */
function listProblems(routes: readonly RouteDoc[], at: string, parent: RouteDoc | undefined, inheritsAction: boolean): Problems {
  const out: Problems = [];
  routes.forEach((r, i) => {
    const p = `${at}[${i}]`;
    out.push(...routeOwnProblems(r, p, parent, inheritsAction));
    // The same path earlier in the list: the later route can only be chosen when the earlier one's conditions fail.
    const key = pathKey(r);
    if (key === undefined) return;
    for (let j = 0; j < i; j++) {
      const e = routes[j]!;
      if (pathKey(e) !== key) continue;
      if (r.prefix !== undefined && (r.prefix_priority === true) !== (e.prefix_priority === true)) {
        out.push(`${p}.prefix_priority: ${at}[${j}] has the same prefix ${JSON.stringify(r.prefix)} with prefix_priority ${e.prefix_priority === true}; give them the same`);
      } else if (!hasConditions(e) || isDeepStrictEqual(conditionsOf(e), conditionsOf(r))) {
        out.push(`${p}: conflicts with ${at}[${j}], which matches the same ${describePath(r)}${hasConditions(e) ? ' with the same methods and headers' : ' for every method and header'}, so this route is never chosen`);
      }
      break;
    }
  });
  return out;
}

function routeOwnProblems(r: RouteDoc, p: string, parent: RouteDoc | undefined, inheritsAction: boolean): Problems {
  const out: Problems = [];
  const forms = (['exact', 'prefix', 'regex'] as const).filter((k) => r[k] !== undefined);
  if (forms.length !== 1) out.push(`${p}: give exactly one of exact, prefix or regex (got ${forms.length === 0 ? 'none' : forms.join(', ')})`);
  if (r.prefix_priority !== undefined && r.prefix === undefined) out.push(`${p}.prefix_priority: only a prefix route has one`);
  if (r.case_insensitive !== undefined && r.regex === undefined) out.push(`${p}.case_insensitive: only a regex route has one (nginx ~*)`);
  let groups = 0;
  if (typeof r.regex === 'string') {
    const re = compileRegex(r.regex, { caseInsensitive: r.case_insensitive === true });
    if (typeof re === 'string') out.push(`${p}.regex: ${re}`);
    else groups = groupCount(re);
  }
  if (parent !== undefined) out.push(...nestingProblems(r, p, parent));

  mappings<Mapping>(r.headers).forEach((h, i) => {
    const problem = headerConditionProblem(h);
    if (problem !== undefined) out.push(`${p}.headers[${i}]: ${problem}`);
    else if (typeof h.regex === 'string') {
      const re = compileRegex(h.regex);
      if (typeof re === 'string') out.push(`${p}.headers[${i}].regex: ${re}`);
    }
  });

  if (r.upstream !== undefined && r.return !== undefined) out.push(`${p}: give either upstream or return, not both`);
  else if (r.upstream === undefined && r.return === undefined && !inheritsAction) {
    out.push(`${p}: needs upstream or return${parent === undefined ? '' : ' (its own, or one of the route it is nested in)'}`);
  }
  if (isMapping(r.return)) {
    const problem = returnProblem(r.return);
    if (problem !== undefined) out.push(`${p}.return: ${problem}`);
  }
  mappings<Mapping>(r.access).forEach((a, i) => {
    const problem = accessRuleProblem(a);
    if (problem !== undefined) out.push(`${p}.access[${i}]: ${problem}`);
  });
  if (isMapping(r.rewrite)) {
    if (r.return !== undefined) out.push(`${p}.rewrite: a route that answers itself (return) forwards nothing to rewrite`);
    const problem = rewriteProblem(r.rewrite, r);
    if (problem !== undefined) out.push(`${p}.rewrite: ${problem}`);
    else if (typeof r.rewrite.regex === 'string') {
      const re = compileRegex(r.rewrite.regex);
      if (typeof re === 'string') out.push(`${p}.rewrite.regex: ${re}`);
      else out.push(...templateProblems(r.rewrite.replacement!, `${p}.rewrite.replacement`, 'text', groupCount(re), 'rewrite.regex'));
    }
  }
  for (const side of ['request_headers', 'response_headers'] as const) {
    const e = r[side];
    if (!isMapping(e)) continue;
    for (const problem of headerEditsProblem(e, side === 'request_headers' ? RESERVED_REQUEST : RESERVED_RESPONSE, side === 'request_headers' ? 'request' : 'response')) {
      out.push(`${p}.${side}: ${problem}`);
    }
    for (const kind of ['set', 'add'] as const) {
      for (const [name, value] of Object.entries(e[kind] ?? {})) {
        if (typeof value === 'string') out.push(...templateProblems(value, `${p}.${side}.${kind}.${name}`, 'header', groups, 'regex'));
      }
    }
  }
  if (typeof r.host === 'string' && r.host !== 'client' && r.host !== 'upstream') out.push(...templateProblems(r.host, `${p}.host`, 'header', groups, 'regex'));
  if (isMapping(r.return)) {
    const ret = r.return;
    if (typeof ret.location === 'string') out.push(...templateProblems(ret.location, `${p}.return.location`, 'uri', groups, 'regex'));
    if (typeof ret.body === 'string') out.push(...templateProblems(ret.body, `${p}.return.body`, 'text', groups, 'regex'));
    if (isMapping(ret.error) && typeof ret.error.message === 'string') out.push(...templateProblems(ret.error.message, `${p}.return.error.message`, 'text', groups, 'regex'));
    for (const [name, value] of Object.entries(ret.headers ?? {})) {
      if (typeof value === 'string') out.push(...templateProblems(value, `${p}.return.headers.${name}`, 'header', groups, 'regex'));
    }
  }
  const nested = mappings<RouteDoc>(r.routes);
  out.push(...listProblems(nested, `${p}.routes`, r, inheritsAction || r.upstream !== undefined || r.return !== undefined));
  return out;
}

/** nginx: a location cannot be inside an exact one; a prefix or exact one must start with its parent's path; regexes may nest anywhere but in an exact one. */
function nestingProblems(r: RouteDoc, p: string, parent: RouteDoc): Problems {
  if (parent.exact !== undefined) return [`${p}: a route cannot be nested in an exact route (${JSON.stringify(parent.exact)})`];
  const path = r.prefix ?? r.exact;
  if (path === undefined) return [];
  if (parent.regex !== undefined) return [`${p}: only regex routes can be nested in a regex route`];
  const outer = parent.prefix;
  if (typeof outer === 'string' && typeof path === 'string' && !path.startsWith(outer)) {
    return [`${p}.${r.prefix !== undefined ? 'prefix' : 'exact'}: ${JSON.stringify(path)} is outside the route it is nested in (${JSON.stringify(outer)}); nginx refuses this too`];
  }
  return [];
}

function templateProblems(text: string, at: string, mode: TemplateMode, groups: number, groupsOf: string): Problems {
  const t = compileTemplate(text, mode);
  if (Array.isArray(t)) return t.map((m) => `${at}: ${m}`);
  const out: Problems = [];
  if (t.maxCapture > groups) {
    out.push(`${at}: $${t.maxCapture} is no capture: ${groups === 0 ? `this route has no ${groupsOf} with groups` : `the ${groupsOf} has ${groups} group(s)`}`);
  }
  // eslint-disable-next-line no-control-regex
  if (mode !== 'text' && /[^\t\x20-\x7e\x80-\xff]/.test(text)) out.push(`${at}: a header value may hold only printable characters`);
  return out;
}

function pathKey(r: RouteDoc): string | undefined {
  if (typeof r.exact === 'string') return `=${r.exact}`;
  if (typeof r.prefix === 'string') return `^${r.prefix}`;
  if (typeof r.regex === 'string') return `~${r.case_insensitive === true ? '*' : ''}${r.regex}`;
  return undefined;
}

function describePath(r: RouteDoc): string {
  if (r.exact !== undefined) return `exact path ${JSON.stringify(r.exact)}`;
  if (r.prefix !== undefined) return `prefix ${JSON.stringify(r.prefix)}`;
  return `regex ${JSON.stringify(r.regex)}`;
}

const hasConditions = (r: RouteDoc): boolean => r.methods !== undefined || r.headers !== undefined;
const conditionsOf = (r: RouteDoc): unknown => ({ methods: r.methods === undefined ? undefined : [...r.methods].sort(), headers: r.headers });

function virtualHostProblems(vhosts: readonly Mapping[], listeners: ReadonlySet<string>): Problems {
  const out: Problems = [];
  const known = [...listeners].join(', ');
  // Per listener: who claims each name, and who is its default.
  const claims = new Map<string, string>();
  const defaults = new Map<string, number>();
  const names = new Set<string>();
  vhosts.forEach((v, i) => {
    const p = `virtual_hosts[${i}]`;
    if (typeof v.name === 'string') {
      if (names.has(v.name)) out.push(`${p}.name: ${JSON.stringify(v.name)} is used by another virtual host`);
      names.add(v.name);
    }
    const on = Array.isArray(v.listeners) ? v.listeners.filter((l): l is string => typeof l === 'string') : [...listeners];
    if (Array.isArray(v.listeners)) {
      v.listeners.forEach((l, j) => {
        if (typeof l === 'string' && !listeners.has(l)) out.push(`${p}.listeners[${j}]: unknown listener ${JSON.stringify(l)} (listeners: ${known})`);
      });
    }
    if (Array.isArray(v.default_for)) {
      v.default_for.forEach((l, j) => {
        if (typeof l !== 'string') return;
        if (!on.includes(l)) out.push(`${p}.default_for[${j}]: ${JSON.stringify(l)} is not one of its listeners (${on.join(', ')})`);
        const other = defaults.get(l);
        if (other !== undefined) out.push(`${p}.default_for[${j}]: virtual_hosts[${other}] is already the default for listener ${JSON.stringify(l)}`);
        else defaults.set(l, i);
      });
    }
    if (!Array.isArray(v.server_names)) return;
    v.server_names.forEach((n, j) => {
      if (typeof n !== 'string') return;
      const parsed = parseServerName(n);
      if (typeof parsed === 'string') {
        out.push(`${p}.server_names[${j}]: ${parsed}`);
        return;
      }
      const key = nameKey(parsed);
      if (key === undefined) return;
      for (const l of on) {
        const prior = claims.get(`${l} ${key}`);
        if (prior !== undefined && prior !== p) {
          out.push(`${p}.server_names[${j}]: ${JSON.stringify(n)} is also a name of ${prior} on listener ${JSON.stringify(l)}`);
          break;
        }
        claims.set(`${l} ${key}`, p);
      }
    });
  });
  return out;
}
