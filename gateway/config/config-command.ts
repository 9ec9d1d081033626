import { publishedConfigSchema } from './json-schema.js';
import { configReference } from './reference.js';
import { CONFIG_USAGE } from './usage.js';

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
