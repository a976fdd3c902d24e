/**
 * Every cdk-nag (AwsSolutions) finding this project accepts, in one place, each with its reason.
 * Anything not listed here fails `cdk synth` and the test suite.
 */
import { type CfnElement, Stack, Token, Validations } from 'aws-cdk-lib';
import type { SmartcarWebhooks } from './smartcar-webhooks';

export function acknowledgeNagFindings(webhooks: SmartcarWebhooks): void {
  const ack = (scope: Parameters<typeof Validations.of>[0], id: string, reason: string) =>
    Validations.of(scope).acknowledge({ id: `AwsSolutions::AwsSolutions-${id}`, reason });
  const { receiver, dataLake } = webhooks;

  ack(
    receiver.api,
    'APIG4',
    'Smartcar cannot send API Gateway credentials; every delivery is authenticated by its SC-Signature ' +
      '(HMAC-SHA256 with the management token) in the verification function, and the route is throttled.',
  );
  for (const fn of [receiver.verifyFunction, dataLake.ingestFunction]) {
    ack(
      fn,
      'L1',
      'The project targets the nodejs22.x runtime on purpose (tested there); upgrades are a reviewed change.',
    );
  }
  const ingestRole = dataLake.ingestFunction.role as NonNullable<typeof dataLake.ingestFunction.role>;
  ack(
    ingestRole,
    'IAM5[Action::s3:Abort*]',
    'Part of bucket.grantPut: lets the function abort its own multipart uploads; it cannot read or delete.',
  );
  // cdk-nag names the finding after the resource as written in the template.
  const bucketResource = dataLake.bucket.node.defaultChild
    ? `<${Stack.of(webhooks).getLogicalId(dataLake.bucket.node.defaultChild as CfnElement)}.Arn>`
    : Token.isUnresolved(dataLake.bucket.bucketName)
      ? undefined // an imported bucket known only at deploy time: its owner acknowledges the finding
      : `arn:<AWS::Partition>:s3:::${dataLake.bucket.bucketName}`;
  if (bucketResource) {
    ack(
      ingestRole,
      `IAM5[Resource::${bucketResource}/${dataLake.rawPrefix}/*]`,
      'Object keys are generated per batch; the grant is limited to the raw-zone prefix of the lake bucket.',
    );
  }
  if (dataLake.bucket.node.defaultChild) {
    ack(
      dataLake.bucket,
      'S1',
      'Writes come only from the ingest function (CloudTrail data events can be enabled account-wide); ' +
        'pass bucketProps.serverAccessLogsBucket to turn on S3 server access logs.',
    );
  }
  if (webhooks.managementTokenSecret.node.defaultChild) {
    ack(
      webhooks.managementTokenSecret,
      'SMG4',
      'The Smartcar management token is issued by the Smartcar Dashboard and cannot be rotated by a Lambda; ' +
        'the rotation runbook in the README replaces it by hand and the receiver picks it up without a redeploy.',
    );
  }
}
