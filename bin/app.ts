#!/usr/bin/env node
/**
 * The CDK app: reads context, instantiates the stack, and runs cdk-nag's AWS Solutions checks. A bad
 * setting stops synth with its one-line message (no stack trace) and exit code 1.
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { SmartcarWebhooksStack, settingsFromContext } from '../lib/smartcar-webhooks-stack';
import { ConfigurationError } from '../lib/validation';

try {
  const app = new App();
  const settings = settingsFromContext((key) => app.node.tryGetContext(key));
  new SmartcarWebhooksStack(app, settings.stackName ?? 'SmartcarWebhooks', {
    description: 'Receives Smartcar vehicle webhooks and keeps every payload in an S3 data lake',
    settings,
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
} catch (err) {
  if (!(err instanceof ConfigurationError)) throw err;
  console.error(`Configuration error: ${err.message}`);
  process.exit(1);
}
