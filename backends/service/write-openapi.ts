// `npm run openapi`: rewrites backends/service/openapi.json from the schemas (see openapi.ts).
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { OPENAPI_FILE, openApiText } from './openapi.js';

writeFileSync(OPENAPI_FILE, openApiText());
process.stdout.write(`wrote ${fileURLToPath(OPENAPI_FILE)}\n`);
