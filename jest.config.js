/**
 * Jest runs TypeScript through SWC (transpile only: type checking is `npm run typecheck`), in two projects:
 * `unit` (test/unit: pure code and mocked clients, so no global setup) and `stack` (test/infra and
 * test/integration), whose global setup builds the handlers and synthesizes the default template once for
 * every infrastructure test. Jest runs a project's global setup only when one of its files is selected,
 * so `npm run test:unit` (or any file under test/unit) never pays for it.
 *
 * The output is the failures and the totals: Jest's summary reporter, plus the console output of a failing
 * file (test/support/failure-console-reporter.js). A passing file prints nothing. For every file's result
 * while working on one, add `--reporters=default`.
 */
const shared = {
  testEnvironment: 'node',
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' }, sourceMaps: 'inline' },
    ],
  },
  setupFiles: ['<rootDir>/test/support/setup-env.ts'],
};

module.exports = {
  // Many suites wait on servers (moto, fakes, HTTP): one worker per core, and at least two (Jest's default,
  // cores - 1, runs a 2-core machine's suites one at a time, about 100 s instead of 70).
  maxWorkers: Math.max(2, require('node:os').availableParallelism()),
  // Moto starts in a few seconds and synthesis takes a few: allow for both, never for a hang. (A run-wide
  // option: Jest ignores it inside a project.)
  testTimeout: 60000,
  reporters: [['summary', { summaryThreshold: 0 }], '<rootDir>/test/support/failure-console-reporter.js'],
  // A temporary folder of the run's own, removed at its end (test/support/run-tmpdir.js).
  globalSetup: '<rootDir>/test/support/run-tmpdir-setup.js',
  globalTeardown: '<rootDir>/test/support/run-tmpdir-teardown.js',
  projects: [
    { ...shared, displayName: 'unit', roots: ['<rootDir>/test/unit'] },
    {
      ...shared,
      displayName: 'stack',
      roots: ['<rootDir>/test/infra', '<rootDir>/test/integration'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
    },
  ],
};
