/** Jest runs TypeScript through ts-jest in transpile-only mode (type checking is `npm run build`). */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { diagnostics: false }],
  },
  // Synthesis bundles the functions with esbuild and the moto tests start a server: allow for both.
  testTimeout: 60000,
};
