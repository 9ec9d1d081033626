import { HttpError } from '../../../common/errors.js';
import { readJsonBody } from '../../../common/admin/body.js';
import type { AdminRoute } from '../../../common/admin/router.js';
import { schemaChecker } from '../../../common/schema-check.js';
import { CustomerId, CustomerPut } from '../admin-schemas.js';
import { invalidateEverywhere, type AdminDeps } from '../admin-deps.js';

const checkPut = schemaChecker(CustomerPut);
const ID = new RegExp(CustomerId.pattern!);
const BAD_ID = { 400: { description: 'Bad customer id (`bad_request`).', schema: 'Error' } };
const idPath = [{ name: 'id', in: 'path' as const, schema: CustomerId }];

function customerId(id: string): string {
  if (!ID.test(id)) throw new HttpError(400, 'bad_request', 'customer id must be 1-128 of A-Z a-z 0-9 . _ : @ -');
  return id;
}

export const getCustomer: AdminRoute<AdminDeps> = {
  method: 'GET',
  path: '/admin/customers/{id}',
  doc: {
    operationId: 'getCustomer', summary: "A customer's plan and limit overrides (config and store merged, store winning).", parameters: idPath,
    responses: { 200: { description: 'The customer.', schema: 'Customer' }, ...BAD_ID, 404: { description: 'No such customer (`not_found`).', schema: 'Error' } },
  },
  async handle(call, d) {
    const id = customerId(call.params.id!);
    const rec = await d.store.findCustomer(id);
    const fromConfig = d.cfg.customers.get(id);
    if (rec === undefined && fromConfig === undefined) throw new HttpError(404, 'not_found', `no customer ${id}`);
    return { status: 200, body: { id, plan: rec?.plan ?? fromConfig?.plan, overrides: { ...fromConfig?.overrides, ...rec?.overrides } } };
  },
};

export const putCustomer: AdminRoute<AdminDeps> = {
  method: 'PUT',
  path: '/admin/customers/{id}',
  doc: {
    operationId: 'putCustomer',
    summary: "Set a customer's plan and overrides. Replaces what the store held for this customer: overrides not given are cleared.",
    body: 'CustomerPut', parameters: idPath,
    responses: { 200: { description: 'Saved.', schema: 'Customer' }, 400: { description: 'Bad id, field or value (`bad_request`).', schema: 'Error' } },
  },
  async handle(call, d) {
    const id = customerId(call.params.id!);
    const { plan, overrides } = await readJsonBody(call.req, checkPut);
    if (plan !== undefined && !d.cfg.plans.has(plan)) throw new HttpError(400, 'bad_request', `plan: unknown plan ${plan}`);
    await d.store.saveCustomer({ id, plan, overrides });
    await invalidateEverywhere(d, { kind: 'customer', id });
    await call.audit({ action: 'customer.put', target: id, details: { plan, overrides } });
    d.log.info({ customer: id, plan, overrides }, 'customer updated');
    return { status: 200, body: { id, plan, overrides } };
  },
};

export const getUsage: AdminRoute<AdminDeps> = {
  method: 'GET',
  path: '/admin/customers/{id}/usage',
  doc: {
    operationId: 'getUsage', summary: "Today's and this month's requests, requests in flight, tokens left.", parameters: idPath,
    responses: { 200: { description: 'The usage.', schema: 'Usage' }, ...BAD_ID },
  },
  async handle(call, d) {
    const id = customerId(call.params.id!);
    const u = await d.store.usage(id);
    return { status: 200, body: { customer: id, day_used: u.dayUsed, month_used: u.monthUsed, inflight: u.inflight, tokens: u.tokens } };
  },
};
