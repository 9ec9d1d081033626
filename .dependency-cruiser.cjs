// The layers of Sluice as import rules (docs/layers.md), checked by test/layers.test.ts
// in npm test. Paths are from the repository root; type-only imports count.

const PRODUCT = '^(common|gateway|backends|lua-compat)/';
const TESTS = '[.]test[.]ts$';

module.exports = {
  forbidden: [
    {
      name: 'common-is-a-leaf',
      comment: 'common/ is what the gateway and the backends share: it depends on nothing of ours, so neither side reaches the other through it.',
      severity: 'error',
      from: { path: '^common/', pathNot: TESTS },
      to: { path: '^(gateway|backends|lua-compat|load-tests|test|deploy)/' },
    },
    {
      name: 'backends-not-gateway',
      comment: 'The image backends and the webhook worker run without the gateway; what both need lives in common/.',
      severity: 'error',
      from: { path: '^backends/' },
      to: { path: '^gateway/' },
    },
    {
      name: 'gateway-not-backends',
      comment: 'The gateway reaches the backends over HTTP only; what both need lives in common/.',
      severity: 'error',
      from: { path: '^gateway/' },
      to: { path: '^backends/' },
    },
    {
      name: 'product-not-load-tests',
      comment: 'load-tests/ holds benchmarks and scenarios; the product (sluice loadtest included, in gateway/loadtest/) never imports it.',
      severity: 'error',
      from: { path: PRODUCT },
      to: { path: '^load-tests/' },
    },
    {
      name: 'product-not-test-harness',
      comment: 'Only tests use test/harness/; a helper that needs it is test code and lives there.',
      severity: 'error',
      from: { path: PRODUCT, pathNot: TESTS },
      to: { path: '^test/' },
    },
    {
      name: 'lua-compat-not-gateway',
      comment: 'lua-compat/ is what Sluice shares with the nginx + Lua edge (Redis scripts, the nginx module); code that reads the gateway config lives in gateway/.',
      severity: 'error',
      from: { path: '^lua-compat/', pathNot: TESTS },
      to: { path: '^gateway/' },
    },
    {
      name: 'no-circular',
      comment: 'No module imports itself through others. A cycle through the request context (gateway/pipeline/context.ts, which imports only types) is the one exception: every stage takes the context, and the context names what stages fill in. (Cycles between folders are checked by test/layers.test.ts: dependency-cruiser sees each directory on its own.)',
      severity: 'error',
      from: {},
      to: { circular: true, viaOnly: { pathNot: '^gateway/pipeline/context[.]ts$' } },
    },
  ],
  options: {
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
  },
};
