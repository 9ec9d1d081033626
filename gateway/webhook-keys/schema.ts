import { Type } from '@sinclair/typebox';
import { Section } from '../../common/schema-types.js';

// The customer's side of its webhook signing key: what GET /v1/webhooks/key answers and
// what POST /v1/webhooks/key/rotate takes. The public OpenAPI document uses these.

export const WebhookKey = Type.Object({
  key: Type.String({ pattern: '^whsec_[A-Za-z0-9+/]+={0,2}$', description: 'The current signing key (Standard Webhooks `whsec_`): verify deliveries with it.' }),
  public_key: Type.Union([Type.String({ pattern: '^whpk_[A-Za-z0-9+/]{43}=$' }), Type.Null()], {
    description: 'The current ed25519 public key (`whpk_`): verifies the `v1a` signature every delivery also carries, without holding a secret.' }),
  created_at: Type.String({ description: 'ISO 8601.' }),
  previous: Type.Union([
    Type.Object({
      created_at: Type.String(),
      expires_at: Type.String({ description: 'Until then deliveries carry a second signature, by the replaced key.' }),
    }, { additionalProperties: false }),
    Type.Null(),
  ], { description: 'After a rotation: the replaced key, while it still signs.' }),
  rotation_overlap_seconds: Type.Integer({ description: 'How long a rotation keeps the replaced key signing (the most a rotation may ask for).' }),
}, { additionalProperties: false });

export const WebhookKeyRotate = Section({
  overlap_seconds: Type.Optional(Type.Integer({ minimum: 0, description: 'How long the replaced key keeps signing; 0 stops it at once (a leaked key). Default and most: rotation_overlap_seconds.' })),
});
