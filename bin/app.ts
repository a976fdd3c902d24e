#!/usr/bin/env node
/** The CDK app: reads context, instantiates the stack, and runs cdk-nag's AWS Solutions checks. */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { SmartcarWebhooksStack, settingsFromContext } from '../lib/smartcar-webhooks-stack';

const app = new App();
const stackName = (app.node.tryGetContext('stackName') as string | undefined) || 'SmartcarWebhooks';
new SmartcarWebhooksStack(app, stackName, {
  description: 'Receives Smartcar vehicle webhooks and keeps every payload in an S3 data lake',
  settings: settingsFromContext((key) => app.node.tryGetContext(key)),
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
