/**
 * Jest runs TypeScript through SWC (transpile only: type checking is `npm run typecheck`). The global
 * setup builds the handlers and synthesizes the default template once for every infrastructure test.
 */
module.exports = {
  testEnvironment: 'node',
  // Many suites wait on servers (moto, fakes, HTTP): one worker per core, and at least two (Jest's default,
  // cores - 1, runs a 2-core machine's suites one at a time, about 100 s instead of 70).
  maxWorkers: Math.max(2, require('node:os').availableParallelism()),
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' }, sourceMaps: 'inline' },
    ],
  },
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  setupFiles: ['<rootDir>/test/support/setup-env.ts'],
  // Moto starts in a few seconds and synthesis takes a few: allow for both, never for a hang.
  testTimeout: 60000,
};
