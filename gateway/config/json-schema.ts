import { PLACEHOLDER } from '../../common/config-text.js';
import { documentSchema } from '../../common/schema-check.js';
import { SluiceConfigSchema } from './schema.js';

type Node = Record<string, unknown>;

const ENV_REF = { $ref: '#/definitions/env' };
// Subschemas a JSON Schema node can hold, as TypeBox writes them.
const CHILD_MAPS = ['properties', 'patternProperties', 'definitions'] as const;
const CHILDREN = ['items', 'if', 'then', 'else', 'additionalProperties'] as const;

/**
 * The JSON Schema of the config file as an operator writes it (`config/sluice.schema.json`,
 * `sluice config schema`), for editors. It is the loader's schema with two additions the
 * loader handles before validating: a `${ENV}` reference may stand for any number,
 * boolean, choice or patterned string (the loader resolves it first), and a field with a
 * shorthand takes its short form too (`targets: [http://...]`, `tls: true`).
 */
export function publishedConfigSchema(): Node {
  const doc = publish(documentSchema(SluiceConfigSchema));
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $comment: 'Generated from gateway/config/schema.ts by `sluice config schema`; do not edit.',
    ...doc,
    definitions: {
      ...doc.definitions as Node,
      env: {
        type: 'string',
        pattern: PLACEHOLDER.source,
        description: 'A ${NAME} or ${NAME:-default} reference, replaced by the environment variable when the config is loaded.',
      },
    },
  };
}

function publish(node: Node): Node {
  for (const key of CHILD_MAPS) {
    const map = node[key] as Record<string, Node> | undefined;
    if (map !== undefined) for (const [k, v] of Object.entries(map)) map[k] = publish(v);
  }
  for (const key of CHILDREN) {
    if (typeof node[key] === 'object' && node[key] !== null) node[key] = publish(node[key] as Node);
  }
  const { shorthand, ...rest } = node;
  if (shorthand === 'url') return either(rest, { type: 'string', description: `Short for {${shorthand}: ...}.` });
  if (shorthand === true) return either(rest, { type: 'boolean', description: 'true: every default; false: off.' });
  return takesEnv(rest) ? either(rest, ENV_REF) : rest;
}

/** A value `${VAR}` could not be written as literally: a number, boolean, choice or patterned string. */
function takesEnv(node: Node): boolean {
  return ['number', 'integer', 'boolean'].includes(node.type as string)
    || (node.type === 'string' && (node.enum !== undefined || node.pattern !== undefined));
}

/** `anyOf` with the description and default on the outside, where editors show them. */
function either(node: Node, alternative: Node): Node {
  const { description, default: def, ...inner } = node;
  return {
    ...(description === undefined ? {} : { description }),
    ...(def === undefined ? {} : { default: def }),
    anyOf: [inner, alternative],
  };
}
