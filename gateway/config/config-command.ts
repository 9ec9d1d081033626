import { publishedConfigSchema } from './json-schema.js';
import { configReference } from './reference.js';

export const CONFIG_USAGE = `  sluice config schema      print the config file's JSON Schema (config/sluice.schema.json)
  sluice config reference   print the config reference, every field from the schema (docs/config-reference.md)`;

/** `sluice config ...`; exit 2 on anything else, like every sluice command line mistake. */
export function runConfigCommand(args: readonly string[]): number {
  if (args.length === 1 && args[0] === 'schema') {
    process.stdout.write(`${JSON.stringify(publishedConfigSchema(), null, 2)}\n`);
    return 0;
  }
  if (args.length === 1 && args[0] === 'reference') {
    process.stdout.write(configReference());
    return 0;
  }
  process.stderr.write(`usage:\n${CONFIG_USAGE}\n`);
  return 2;
}
