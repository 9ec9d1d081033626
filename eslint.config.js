// The linter: a small set of rules that catch bugs the compiler lets through, with the
// types (typescript-eslint reads the same tsconfig.json). Formatting is not its job;
// no formatter runs over the tree. tsc already refuses unused locals and parameters
// (noUnusedLocals, noUnusedParameters) and fallthrough cases.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'deploy/grafana/', '**/*.js', '**/*.cjs'] },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { project: './tsconfig.json', tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {
      // A promise nobody awaits, returns, voids or catches: its rejection is unhandled (the
      // process dies) and its work races whatever comes next.
      '@typescript-eslint/no-floating-promises': ['error', {
        // node:test runs what test(), it() and describe() register; their promises are its to await.
        allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] }],
      }],
      // An async function where a callback's return is ignored (an event handler, forEach)
      // or a promise where a boolean is tested.
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/only-throw-error': 'error',
      // Passing on what was caught (unknown) is fine; rejecting with a string or a number is not.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingAny: true, allowThrowingUnknown: true }],
      // `${obj}` that prints [object Object].
      '@typescript-eslint/no-base-to-string': 'error',
      // A statement that computes and drops a value: usually a missing call, return or assignment.
      '@typescript-eslint/no-unused-expressions': 'error',
      'no-async-promise-executor': 'error',
      // A control character in a regex is usually a typo for an escape.
      'no-control-regex': 'error',
      'no-self-compare': 'error',
      'no-unsafe-finally': 'error',
      'no-cond-assign': 'error',
      'no-constant-binary-expression': 'error',
      'no-self-assign': 'error',
      'use-isnan': 'error',
      'no-loss-of-precision': 'error',
      eqeqeq: ['error', 'smart'],
    },
  },
  {
    // Types at the boundaries: any turns the checks off for everything it touches. Tests
    // and their harness may walk parsed JSON and YAML as any: the assertions are their types.
    files: ['**/*.ts'],
    ignores: ['**/*.test.ts', 'test/**'],
    rules: { '@typescript-eslint/no-explicit-any': 'error' },
  },
);
