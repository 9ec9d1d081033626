// `npm run docs:errors`: rewrites docs/errors.md from the table (error-codes.ts).
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { errorCodesMarkdown } from './error-codes.js';

const FILE = new URL('../../docs/errors.md', import.meta.url);
writeFileSync(FILE, errorCodesMarkdown());
process.stdout.write(`wrote ${fileURLToPath(FILE)}\n`);
