import { createHash } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import standalone from 'ajv/dist/standalone/index.js';

/**
 * Where validators' code is kept between processes: beside the compiled program
 * (dist/.schema-code/), written by the same install that wrote the program, so it is
 * trusted as the program is. A read-only install just compiles in every process.
 */
export const SCHEMA_CODE_DIR = fileURLToPath(new URL('../.schema-code/', import.meta.url));

const load = createRequire(import.meta.url);
/** Part of each file's name: code another ajv generated (an upgrade in place) is not loaded. */
const AJV_VERSION = (load('ajv/package.json') as { version: string }).version;

/**
 * An ajv as the checkers need it: every error, the failing value and schema in each,
 * defaults filled in, and the source of what it compiles kept (to write it out). Formats
 * are documentation: what a URL must be (http(s), no credentials) is a semantic pass's
 * job, with a message to match.
 */
function schemaAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, verbose: true, useDefaults: true, discriminator: true, strictNumbers: true, allowUnionTypes: true, keywords: ['x-component'], formats: { uri: true }, code: { source: true } });
  // The editors' message keywords (see schema-errors.ts): annotations to ajv.
  ajv.addKeyword({ keyword: 'errorMessage', schemaType: 'string' });
  ajv.addKeyword({ keyword: 'patternErrorMessage', schemaType: 'string' });
  // A field that also takes a short form (common/config-text.ts expands it before checking).
  ajv.addKeyword({ keyword: 'shorthand' });
  return ajv;
}

/**
 * The validator for `schema` (a JSON Schema document). ajv's code generation for the config
 * schema took 150-200 ms of CPU in every gateway process and worker, and in every
 * `sluice --check`; the code it generates depends on the schema alone. So the first process
 * to need a schema writes the code to `dir`, named by the schema's hash, and later ones
 * load it: a changed schema, or another ajv, has another name, and is compiled afresh.
 */
export function schemaValidator(schema: object, dir = SCHEMA_CODE_DIR): ValidateFunction {
  const file = join(dir, `${createHash('sha256').update(AJV_VERSION).update(JSON.stringify(schema)).digest('hex').slice(0, 32)}.cjs`);
  try {
    return load(file) as ValidateFunction;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
  }
  const ajv = schemaAjv();
  const validate = ajv.compile(schema);
  try {
    mkdirSync(dir, { recursive: true });
    // Whole or not at all: processes starting together may write it at once.
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, standalone.default(ajv, validate));
    renameSync(tmp, file);
  } catch {
    // Not writable (a read-only install): this process keeps its own compiled copy.
  }
  return validate;
}
