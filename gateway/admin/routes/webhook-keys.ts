import { HttpError } from '../../../common/errors.js';
import type { AdminRoute } from '../../../common/admin/router.js';
import type { AdminDeps } from '../admin-deps.js';

export const rewrapWebhookKeys: AdminRoute<AdminDeps> = {
  method: 'POST',
  path: '/admin/webhook-keys/rewrap',
  doc: {
    operationId: 'rewrapWebhookKeys',
    summary: "Re-encrypt every customer's webhook keys under the current master key (SLUICE_MASTER_KEY), after a master key rotation; the keys themselves do not change.",
    responses: {
      200: { description: 'Done.', schema: 'Rewrapped' },
      503: { description: 'No master key on this gateway, or a key sealed under a master key it does not have (`unavailable`).', schema: 'Error' },
    },
  },
  async handle(call, d) {
    if (d.webhookKeys === undefined) throw new HttpError(503, 'unavailable', 'webhook keys are not enabled on this gateway (no SLUICE_MASTER_KEY)');
    let r: { rewrapped: number; current: number };
    try {
      r = await d.webhookKeys.rewrap();
    } catch (err) {
      throw new HttpError(503, 'unavailable', `rewrap stopped: ${(err as Error).message}`);
    }
    await call.audit({ action: 'webhook_keys.rewrap', target: d.webhookKeys.masterKeyId, details: r });
    return { status: 200, body: { ...r, master_key: d.webhookKeys.masterKeyId } };
  },
};
