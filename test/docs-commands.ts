/**
 * Every command the docs show (README.md and docs/*.md, code blocks and inline code), and what runs it:
 * the files that exercise its entry point (each must exist and mention `mentions`), or why it is
 * deliberately untested. test/unit/docs-commands.test.ts fails on a documented command that is not here,
 * on an entry no doc shows any more, and on a file below that no longer runs what it claims.
 *
 * Keys: an operations command by its name (`replay` covers `npm run replay -- …` and
 * `npx smartcar-webhooks replay …`; their flags are also checked with cli/registry.ts's checkArgs);
 * any other npm script as `npm run <script>`; `npm <sub>`; `npx cdk <sub>`; `aws <service> <operation>`.
 */

/** A file that runs a command's entry point, and the text that shows it does (its import, or the command). */
export interface TestRef {
  readonly file: string;
  readonly mentions: string;
}

export type DocCommandEntry =
  | { readonly tests: readonly TestRef[]; readonly untested?: undefined }
  | { readonly untested: string; readonly tests?: undefined };

const NEEDS_AWS = 'needs a real AWS account (deploys or changes live resources); no test has one';
const BENCHMARK = 'a benchmark: it prints figures for the docs and takes minutes; benchmarks are scripts, not tests';

export const DOC_COMMANDS: Readonly<Record<string, DocCommandEntry>> = {
  // The operations commands (cli/registry.ts). Each test runs the command's own module in-process, the
  // deployed adapters against moto where they have one.
  start: { tests: [{ file: 'test/integration/local-run.test.ts', mentions: 'local/start' }] },
  'send-event': {
    tests: [
      { file: 'test/integration/local-run.test.ts', mentions: 'local/send-event' },
      { file: 'test/integration/send-event-replay.test.ts', mentions: 'local/send-event' },
    ],
  },
  subscribe: { tests: [{ file: 'test/integration/local-run.test.ts', mentions: 'local/subscribe' }] },
  reconcile: {
    tests: [
      { file: 'test/integration/local-run.test.ts', mentions: 'cli/reconcile' },
      { file: 'test/integration/reconcile.test.ts', mentions: 'reconcile-drill' },
      { file: 'test/support/reconcile-drill.ts', mentions: 'local/reconcile' },
    ],
  },
  query: { tests: [{ file: 'test/integration/queries.test.ts', mentions: 'local/query' }] },
  fleet: { tests: [{ file: 'test/integration/fleet.test.ts', mentions: 'local/fleet' }] },
  compact: { tests: [{ file: 'test/integration/curated.test.ts', mentions: 'local/compact' }] },
  'rotate-token': {
    tests: [{ file: 'test/integration/local-rejected.test.ts', mentions: 'scripts/ops/rotate-token' }],
  },
  'recover-rejected': {
    tests: [
      { file: 'test/integration/local-rejected.test.ts', mentions: 'scripts/ops/recover-rejected' },
      { file: 'test/integration/rejected-deliveries.test.ts', mentions: 'scripts/ops/recover-rejected' },
    ],
  },
  redrive: { tests: [{ file: 'test/integration/faults.test.ts', mentions: 'scripts/ops/redrive' }] },
  replay: { tests: [{ file: 'test/integration/faults.test.ts', mentions: 'scripts/ops/replay' }] },
  'rebuild-state': {
    tests: [{ file: 'test/integration/vehicle-state.test.ts', mentions: 'scripts/ops/rebuild-state' }],
  },
  erase: { tests: [{ file: 'test/integration/erase-local.test.ts', mentions: 'scripts/ops/erase' }] },
  expire: { tests: [{ file: 'test/integration/expire-local.test.ts', mentions: 'scripts/ops/expire' }] },
  trace: {
    tests: [
      { file: 'test/integration/trace.test.ts', mentions: 'cli/trace' },
      { file: 'test/integration/trace-deployed.test.ts', mentions: 'cli/trace' },
    ],
  },
  resources: { tests: [{ file: 'test/integration/cli-deployed.test.ts', mentions: 'cli/resources' }] },
  'smartcar-webhooks --help': { tests: [{ file: 'test/integration/cli.test.ts', mentions: 'cli/main' }] },
  '<command>': { untested: 'the general form (`npm run <command> -- …`), not a command to run' },

  // npm itself, and the repository's scripts.
  'npm ci': { tests: [{ file: '.ci/run', mentions: 'npm ci' }] },
  'npm test': { untested: 'it is the test suite itself; CI (.ci/run) runs it' },
  'npm pack': { tests: [{ file: 'scripts/consumer-test.ts', mentions: "'pack'" }] },
  'npm publish': { tests: [{ file: '.ci/run', mentions: 'npm publish --dry-run' }] },
  'npm install': { tests: [{ file: 'scripts/consumer-test.ts', mentions: "'install'" }] },
  'npm install github:': {
    untested: 'installs from GitHub through the package prepare script: needs the network and a pushed tag',
  },
  'npm run lint': { tests: [{ file: '.ci/run', mentions: 'npm run lint' }] },
  'npm run typecheck': { tests: [{ file: '.ci/run', mentions: 'npm run typecheck' }] },
  'npm run jsii': { tests: [{ file: '.ci/run', mentions: 'npm run jsii' }] },
  'npm run test:consumer': { tests: [{ file: '.ci/run', mentions: 'npm run test:consumer' }] },
  'npm run test:unit': { untested: 'a subset of npm test (jest test/unit)' },
  'npm run docs:api': { untested: 'rewrites docs/api.md; CI runs its check instead (npm run docs:api:check)' },
  'npm run docs:api:check': { tests: [{ file: '.ci/run', mentions: 'npm run docs:api:check' }] },
  'npm run load-test': { untested: 'a load test: it prints rates and latencies on the machine it runs on' },
  'npm run bench:cost': { untested: BENCHMARK },
  'npm run bench:coldstart': { untested: BENCHMARK },
  'npm run bench:fleet': { untested: BENCHMARK },
  'npm run bench:query': { untested: BENCHMARK },
  'npm run bench:erase': { untested: BENCHMARK },
  'npm run bench:trace': { untested: BENCHMARK },
  'npm run bench:inspector': { untested: BENCHMARK },
  'npm run bench:reconcile': {
    untested: `${BENCHMARK}; the same drill runs at test scale in test/integration/reconcile.test.ts`,
  },
  'npm run bench:test': { untested: `${BENCHMARK} (it runs npm test three times)` },
  'npm run bench:token-mistake': {
    untested: `${BENCHMARK}; the same drill runs at test scale in test/integration/token-mistake.test.ts`,
  },
  'npm run bench:workflow': { untested: BENCHMARK },

  // The CDK CLI and the AWS CLI.
  'npx cdk synth': { tests: [{ file: '.ci/run', mentions: 'npx cdk synth' }] },
  'npx cdk deploy': { untested: NEEDS_AWS },
  'npx cdk bootstrap': { untested: NEEDS_AWS },
  'aws secretsmanager put-secret-value': { untested: NEEDS_AWS },
  'aws sqs start-message-move-task': { untested: NEEDS_AWS },
  'aws stepfunctions start-execution': { untested: NEEDS_AWS },
  'aws events list-archives': { untested: 'needs a real AWS account (reads an event bus archive); no test has one' },
};
