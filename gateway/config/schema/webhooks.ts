import { Type } from '@sinclair/typebox';
import { Section } from '../../../common/schema-types.js';

export const Webhooks = Section({
  rotation_overlap_s: Type.Integer({ minimum: 0, maximum: 30 * 86400, default: 86400,
    description: 'After POST /v1/webhooks/key/rotate, how long the replaced key keeps signing beside the new one; a rotation may ask for less.' }),
  keys_dir: Type.Optional(Type.String({ minLength: 1,
    description: 'Memory store only: the directory of the customers\' webhook keys (sealed), shared with the backends that sign. Default: SLUICE_WEBHOOK_KEYS_DIR, which `sluice` sets to a directory of its own for the run.' })),
}, { default: {}, description: 'Customers\' own webhook signing keys (Redis keeps them beside the limits; SLUICE_MASTER_KEY encrypts them).' });
