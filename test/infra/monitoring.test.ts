import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as sns from 'aws-cdk-lib/aws-sns';
import { SmartcarWebhooks } from '../../lib/smartcar-webhooks';
import { settingsFromContext } from '../../lib/smartcar-webhooks-stack';
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
      Threshold: 1200, // above the 11-minute visibility timeout a single retry waits out
    });
  });

  it('on executions that fail, time out or are aborted, for every state machine that runs unattended: a notification per run, no alarm to pay for', () => {
    alarmOn('ExecutionThrottled', { Namespace: 'AWS/States' });
    // Reconcile's and the fleet check's come with those features (see "alarms come with their features").
    for (const machine of ['SubscriptionWorkflowStateMachine', 'CompactionStateMachine', 'ErasureStateMachine']) {
      template.hasResourceProperties('AWS::Events::Rule', {
        EventPattern: {
          source: ['aws.states'],
          'detail-type': ['Step Functions Execution Status Change'],
          detail: {
            status: ['FAILED', 'TIMED_OUT', 'ABORTED'],
            stateMachineArn: [{ Ref: Match.stringLikeRegexp(machine) }],
          },
        },
        Targets: [
          Match.objectLike({
            Arn: { Ref: Match.stringLikeRegexp('MonitoringAlarmTopic') },
            InputTransformer: Match.objectLike({
              InputTemplate: Match.stringLikeRegexp('RunsFailed: execution <detail-name> ended <detail-status>'),
            }),
          }),
        ],
      });
    }
    // None of them is an alarm any more (three metrics, $0.30 a month each).
    expect(JSON.stringify(template.findResources('AWS::CloudWatch::Alarm'))).not.toContain('ExecutionsAborted');
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

  it('on unusual VERIFY volume, answered and refused challenges together, from one metric', () => {
    const service = { Name: 'service', Value: 'TestStack' };
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmDescription: Match.stringLikeRegexp('signing oracle'),
      Namespace: 'SmartcarWebhooks',
      MetricName: 'VerifyRequests',
      Dimensions: [service],
      Threshold: 10,
      AlarmActions: [{ Ref: Match.stringLikeRegexp('MonitoringAlarmTopic') }],
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

  it('has eighteen alarms by default (the delivery path and its stream, the workflow, the quarantine, the compaction) and no dashboard', () => {
    // The workflow's, the compaction's and the erase's failed runs are notified by free EventBridge rules.
    template.resourceCountIs('AWS::CloudWatch::Alarm', 18);
    // Firehose retries a failing bucket for 24 hours, then drops what it holds: paged after one.
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/Firehose',
      MetricName: 'DeliveryToS3.DataFreshness',
      Statistic: 'Maximum',
      Threshold: 3600,
    });
    // A stream that refuses deliveries for a whole hour (not a burst): they go to the queue, dearer.
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'DeliveryStreamFallbacks',
      EvaluationPeriods: 12,
      Period: 300,
      Threshold: 1,
      TreatMissingData: 'notBreaching',
    });
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 0);
    expect(Object.keys(template.findOutputs('*'))).not.toContain('DashboardName');
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

/** Whether an alarm watches a state machine, by the start of its logical id. */
const watches = (alarm: unknown, idPrefix: string) => JSON.stringify(alarm).includes(`"Ref":"${idPrefix}`);

describe('alarms come with their features, and cost nothing for features that are off', () => {
  /** Everything that is off by default switched on, synthesized once. */
  let on: Template;
  beforeAll(() => {
    const stack = bareStack();
    new SmartcarWebhooks(stack, 'W', {
      webhookId: 'wh',
      reconcile: { enabled: true },
      fleetCheck: { enabled: true },
      vehicleStateTable: true,
      monitoring: { dashboard: true },
    });
    on = Template.fromStack(stack);
  });

  it('by default: no reconcile, fleet-check or silent-vehicles alarm (those features are off)', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm'));
    for (const machine of ['SmartcarWebhooksReconcileStateMachine', 'SmartcarWebhooksFleetCheckStateMachine'])
      expect(alarms.filter((a) => watches(a, machine))).toEqual([]);
    expect(JSON.stringify(alarms)).not.toMatch(/SilentVehicles|WebhookHealthy/);
  });

  it('with reconcile, the fleet check, the state table and the dashboard on: their alarms and notifications, and the dashboard', () => {
    const alarms = Object.values(on.findResources('AWS::CloudWatch::Alarm'));
    const rules = JSON.stringify(on.findResources('AWS::Events::Rule'));
    for (const machine of ['WReconcileStateMachine', 'WFleetCheckStateMachine'])
      expect(rules).toMatch(new RegExp(`"stateMachineArn":\\[\\{"Ref":"${machine}`));
    for (const name of ['SilentVehicles', 'WebhookHealthy'])
      expect(alarms.filter((a) => JSON.stringify(a.Properties).includes(`"${name}"`)).length).toBeGreaterThan(0);
    // 18 + reconcile's webhook health + the fleet check's silent vehicles + state dead letters
    on.resourceCountIs('AWS::CloudWatch::Alarm', 21);
    on.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    for (const a of alarms) expect(a.Properties.AlarmActions).toEqual([{ Ref: expect.stringMatching(/AlarmTopic/) }]);
  });

  it('the ingest function publishes its per-batch figures only with detailedMetrics (on with the dashboard, else off)', () => {
    const ingestEnv = (t: Template) =>
      Object.values(t.findResources('AWS::Lambda::Function')).find((f) =>
        String(f.Properties.Description).startsWith('Writes queued'),
      )?.Properties.Environment.Variables;
    expect(ingestEnv(template)).toMatchObject({ DETAILED_METRICS: 'false' });
    expect(ingestEnv(on)).toMatchObject({ DETAILED_METRICS: 'true' });
    const explicit = new SmartcarWebhooks(bareStack(), 'W', { monitoring: { detailedMetrics: true } });
    expect(explicit.monitoring.detailedMetrics).toBe(true);
    expect(explicit.monitoring.dashboard).toBeUndefined();
  });

  it('compaction off: its alarms are not created either', () => {
    const off = new SmartcarWebhooks(bareStack(), 'W', { compaction: { enabled: false } });
    expect(off.compaction.failedAlarm).toBeUndefined();
    expect(off.compaction.lateAlarm).toBeUndefined();
    expect(off.fleetCheck.silentAlarm).toBeUndefined();
    expect(Object.keys(off.monitoring.runNotifications)).toEqual(['Workflow', 'Erase']);
  });
});

it('warns, when the alarm topic is brought, that EventBridge must be allowed to publish to it', () => {
  const stack = bareStack();
  const topic = sns.Topic.fromTopicArn(stack, 'Theirs', 'arn:aws:sns:us-east-1:123456789012:ops');
  new SmartcarWebhooks(stack, 'W', { monitoring: { existingAlarmTopic: topic } });
  const warnings = Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('events.amazonaws.com'));
  expect(warnings).toHaveLength(1);
});

describe('options', () => {
  it('subscribes an email, tunes thresholds, and can skip the dashboard', () => {
    const stack = bareStack();
    new SmartcarWebhooks(stack, 'W', {
      monitoring: { alarmEmail: 'ops@example.com', signatureFailureThreshold: 50, dashboard: false },
    });
    expect(settingsFromContext((k) => ({ dashboard: 'true' })[k])).toMatchObject({ dashboard: true });
    expect(() => settingsFromContext((k) => ({ dashboard: 'yes' })[k])).toThrow(/"dashboard" must be true or false/);
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
