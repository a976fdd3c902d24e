/**
 * Runs in every test file. aws-cdk-lib validates each synthesized template with a WebAssembly
 * CloudFormation validator that costs about 4 s to start in every fresh module registry (that is, in
 * every test file). The default stack is still synthesized with it, once, in the global setup (and
 * `cdk synth` always runs it); the many prop-variant stacks in the test files skip it.
 */
process.env.CDK_VALIDATION = 'false';
