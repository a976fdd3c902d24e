import { Match, Template } from 'aws-cdk-lib/assertions';
import * as sns from 'aws-cdk-lib/aws-sns';
import { SmartcarWebhooks } from '../../lib/smartcar-webhooks';
import { bareStack, synthStack } from '../support/synth';

let template: Template;
beforeAll(() => {
  template = synthStack().template;
});

function alarmOn(metricName: string, extra: Record<string, unknown> = {}) {
  template.hasResourceProperties('AWS::CloudWatch::Alarm', {
    MetricName: metricName,
    AlarmActions: [{ Ref: Match.stringLikeRegexp('MonitoringAlarmTopic') }],
    OKActions: [{ Ref: Match.stringLikeRegexp('MonitoringAlarmTopic') }],
    TreatMissingData: 'notBreaching',
    ...extra,
  });
}

describe('alarms, all wired to the alarm topic', () => {
  it('on front-door 5xx, p99 latency above 5 s and throttling (the HTTP API, the default; the Function URL in front-door.test.ts)', () => {
    const api = [{ Name: 'ApiId', Value: { Ref: Match.stringLikeRegexp('ReceiverApi') } }];
    alarmOn('5xx', { Namespace: 'AWS/ApiGateway', Dimensions: api, Statistic: 'Sum', Threshold: 1 });
    alarmOn('Latency', {
      Namespace: 'AWS/ApiGateway',
      Dimensions: api,
      ExtendedStatistic: 'p99',
      Threshold: 5000,
      ComparisonOperator: 'GreaterThanThreshold',
    });
    alarmOn('FrontDoorThrottled', { Dimensions: api, Threshold: 1 });
  });

  it("on signature failures and an unusable token, from the functions' own metrics", () => {
    const service = { Name: 'service', Value: 'TestStack' };
    alarmOn('SignatureFailures', { Namespace: 'SmartcarWebhooks', Dimensions: [service], Threshold: 10 });
    alarmOn('TokenUnavailable', { Namespace: 'SmartcarWebhooks', Dimensions: [service], Threshold: 1 });
  });

  it('on a non-empty dead-letter queue and on old queued deliveries', () => {
    alarmOn('ApproximateNumberOfMessagesVisible', {
      Namespace: 'AWS/SQS',
      Dimensions: [
        { Name: 'QueueName', Value: { 'Fn::GetAtt': [Match.stringLikeRegexp('DeadLetterQueue'), 'QueueName'] } },
      ],
      Threshold: 1,
    });
    alarmOn('ApproximateAgeOfOldestMessage', {
      Dimensions: [
        { Name: 'QueueName', Value: { 'Fn::GetAtt': [Match.stringLikeRegexp('DeliveryQueue'), 'QueueName'] } },
      ],
      Threshold: 600,
    });
  });

  it('on executions that fail, time out or are aborted, for every state machine that runs unattended', () => {
    alarmOn('ExecutionThrottled', { Namespace: 'AWS/States' });
    for (const machine of ['SubscriptionWorkflowStateMachine', 'ReconcileStateMachine', 'FleetCheckStateMachine']) {
      const stat = (id: string, metricName: string) =>
        Match.objectLike({
          Id: id,
          MetricStat: Match.objectLike({
            Metric: {
              Namespace: 'AWS/States',
              MetricName: metricName,
              Dimensions: [{ Name: 'StateMachineArn', Value: { Ref: Match.stringLikeRegexp(machine) } }],
            },
          }),
        });
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Threshold: 1,
        AlarmActions: [{ Ref: Match.stringLikeRegexp('MonitoringAlarmTopic') }],
        Metrics: Match.arrayWith([
          Match.objectLike({ Expression: 'FILL(failed, 0) + FILL(timedOut, 0) + FILL(aborted, 0)' }),
          stat('failed', 'ExecutionsFailed'),
          stat('timedOut', 'ExecutionsTimedOut'),
          stat('aborted', 'ExecutionsAborted'),
        ]),
      });
    }
  });

  it('on a quarantine that turns deliveries away, and on a quarantine writer that fails or falls behind', () => {
    alarmOn('QuarantineDropped', { Namespace: 'SmartcarWebhooks', Threshold: 1 });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmActions: [{ Ref: Match.stringLikeRegexp('MonitoringAlarmTopic') }],
      Metrics: Match.arrayWith([
        Match.objectLike({ Expression: 'FILL(errors, 0) + FILL(dead, 0) + IF(FILL(age, 0) > 600, 1, 0)' }),
        Match.objectLike({
          Id: 'errors',
          MetricStat: Match.objectLike({
            Metric: Match.objectLike({
              MetricName: 'Errors',
              Dimensions: [
                { Name: 'FunctionName', Value: { Ref: Match.stringLikeRegexp('QuarantineWriterFunction') } },
              ],
            }),
          }),
        }),
      ]),
    });
  });

  it("on the recovery function's errors", () => {
    alarmOn('Errors', {
      Namespace: 'AWS/Lambda',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: Match.stringLikeRegexp('QuarantineRecoverFunction') } }],
      AlarmDescription: Match.stringLikeRegexp('recovery function'),
    });
  });

  it('on unusual VERIFY volume, answered and refused challenges together', () => {
    const service = { Name: 'service', Value: 'TestStack' };
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmDescription: Match.stringLikeRegexp('signing oracle'),
      Threshold: 10,
      AlarmActions: [{ Ref: Match.stringLikeRegexp('MonitoringAlarmTopic') }],
      Metrics: Match.arrayWith([
        Match.objectLike({ Expression: 'FILL(answered, 0) + FILL(refused, 0)' }),
        Match.objectLike({
          Id: 'answered',
          MetricStat: Match.objectLike({ Metric: Match.objectLike({ MetricName: 'VerifyChallengesAnswered' }) }),
        }),
        Match.objectLike({
          Id: 'refused',
          MetricStat: Match.objectLike({
            Metric: { Namespace: 'SmartcarWebhooks', MetricName: 'VerifyChallengesRejected', Dimensions: [service] },
          }),
        }),
      ]),
    });
  });

  it("on Smartcar-shaped signature mismatches, naming the cause and the command that fixes it in the deployer's stack", () => {
    alarmOn('SignatureMismatches', {
      Namespace: 'SmartcarWebhooks',
      Threshold: 3,
      AlarmDescription: Match.stringLikeRegexp(
        'token.*`npx smartcar-webhooks rotate-token --stack TestStack`: it puts the token in the secret, then re-ingests',
      ),
    });
  });

  it('name the package CLI with the stack for every runbook step, never a repository script', () => {
    const descriptions = Object.values(template.findResources('AWS::CloudWatch::Alarm')).map((a) =>
      String(a.Properties.AlarmDescription),
    );
    for (const d of descriptions) expect(d).not.toMatch(/npm run|README|stack outputs/);
    expect(descriptions).toEqual(
      expect.arrayContaining([
        expect.stringContaining('`npx smartcar-webhooks redrive --stack TestStack`'),
        expect.stringContaining('`npx smartcar-webhooks recover-rejected --stack TestStack`'),
      ]),
    );
  });

  it('has twenty-two alarms (with the quarantine, the fleet check, the compaction, the reconcile and the erase runs) and one dashboard', () => {
    template.resourceCountIs('AWS::CloudWatch::Alarm', 22);
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  });

  it('keeps the alarm topic TLS-only', () => {
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });
});

describe('options', () => {
  it('subscribes an email, tunes thresholds, and can skip the dashboard', () => {
    const stack = bareStack();
    new SmartcarWebhooks(stack, 'W', {
      monitoring: { alarmEmail: 'ops@example.com', signatureFailureThreshold: 50, dashboard: false },
    });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'SignatureFailures', Threshold: 50 });
    t.resourceCountIs('AWS::CloudWatch::Dashboard', 0);
  });

  it('notifies a topic the caller brings, and refuses an email for it', () => {
    const stack = bareStack();
    const topic = sns.Topic.fromTopicArn(stack, 'T', 'arn:aws:sns:us-east-1:123456789012:ops');
    new SmartcarWebhooks(stack, 'W', { monitoring: { existingAlarmTopic: topic } });
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::SNS::Topic', 0);
    t.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmActions: ['arn:aws:sns:us-east-1:123456789012:ops'] });
    const other = bareStack();
    expect(
      () =>
        new SmartcarWebhooks(other, 'W', {
          monitoring: {
            existingAlarmTopic: sns.Topic.fromTopicArn(other, 'T', 'arn:aws:sns:us-east-1:123456789012:ops'),
            alarmEmail: 'a@b.c',
          },
        }),
    ).toThrow(/subscribe existingAlarmTopic yourself/);
  });
});

describe('runbook texts follow the configuration', () => {
  it('without the quarantine (and without outputs): no recovery is promised; the explicit commands name their queue', () => {
    const stack = bareStack();
    new SmartcarWebhooks(stack, 'W', { quarantine: { enabled: false }, vehicleStateTable: true });
    const text = (metric: string) =>
      JSON.stringify(
        Object.values(Template.fromStack(stack).findResources('AWS::CloudWatch::Alarm')).find(
          (a) => a.Properties.MetricName === metric,
        )?.Properties.AlarmDescription,
      );
    expect(text('SignatureMismatches')).toMatch(/with the quarantine off they are not kept/);
    expect(text('SignatureMismatches')).not.toMatch(/re-ingests/);
    expect(text('SignatureMismatches')).toMatch(/rotate-token --secret-id /);
    const stateAlarm = Object.values(Template.fromStack(stack).findResources('AWS::CloudWatch::Alarm')).find((a) =>
      JSON.stringify(a.Properties.AlarmDescription).startsWith('{"Fn::Join":["",["The vehicle state table'),
    );
    expect(JSON.stringify(stateAlarm?.Properties.AlarmDescription)).toMatch(/redrive --dlq-url .* --queue state/);
  });
});
