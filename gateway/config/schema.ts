import { Type } from '@sinclair/typebox';
import { Section } from '../../common/schema-types.js';
import { StoreSchema } from '../../common/store-config.js';
import { Auth } from './schema/auth.js';
import { Customer, Plan } from './schema/limits.js';
import { Listeners } from './schema/listeners.js';
import { LimitConnZone, LimitReqZone, Route, RouteRef, VirtualHost } from './schema/routes.js';
import { Admin, Log, Server, Shed, SpawnBackend } from './schema/server.js';
import { Upstream } from './schema/upstreams.js';
import { Webhooks } from './schema/webhooks.js';

/**
 * The gateway config file, once: the loader validates with it (filling defaults), the
 * static types come from it (types.ts), and `sluice config schema` publishes it for
 * editors. What it cannot say (references between sections, fields that depend on each
 * other) is checked in semantics.ts.
 */
export const SluiceConfigSchema = Section({
  server: Server,
  listeners: Listeners,
  admin: Admin,
  store: StoreSchema,
  auth: Auth,
  plans: Type.Record(Type.String(), Plan, { minProperties: 1, description: 'Plans by name.' }),
  customers: Type.Record(Type.String(), Customer, { default: {}, description: 'Customers by id: a plan, and limits that override it.' }),
  upstreams: Type.Record(Type.String(), Upstream, { default: {}, description: 'Upstreams by name.' }),
  routes: Type.Array(RouteRef, { default: [], description: 'The routes of every Host no virtual host names (one catch-all virtual host on every listener). A config needs routes here or in virtual_hosts.' }),
  virtual_hosts: Type.Array(VirtualHost, { default: [], description: 'nginx server blocks: routes chosen by Host (docs/routes.md).' }),
  limit_req_zones: Type.Record(Type.String(), LimitReqZone, { default: {}, description: 'nginx limit_req_zone, by zone name.' }),
  limit_conn_zones: Type.Record(Type.String(), LimitConnZone, { default: {}, description: 'nginx limit_conn_zone, by zone name.' }),
  spawn_backends: Type.Array(SpawnBackend, { default: [], description: 'Backends this process starts and stops with itself (the demo stack).' }),
  shed: Shed,
  webhooks: Webhooks,
  log: Log,
}, {
  title: 'Sluice gateway config',
  // Routes nest, so the one route definition is referenced (RouteRef) rather than inlined.
  definitions: { route: Route },
});
