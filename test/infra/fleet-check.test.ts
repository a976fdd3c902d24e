/** The scheduled fleet check in the template: Athena through scoped SDK calls, metrics, alarm, schedule. */
import { Match } from 'aws-cdk-lib/assertions';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { Parser } from 'node-sql-parser';
import { athenaDialect, FLEET_CHECK_SELECT, SILENT_REPORT_SELECT, withViews } from '../../lib/queries';
import { SmartcarWebhooks } from '../../lib/smartcar-webhooks';
import { bareStack, synthStack } from '../support/synth';

const { template } = synthStack();

it('runs hourly, DISABLED until enabled, with no alarm to pay for while off', () => {
  template.hasResourceProperties('AWS::Scheduler::Schedule', {
    ScheduleExpression: 'rate(1 hour)',
    State: 'DISABLED',
    Target: Match.objectLike({ Arn: { Ref: Match.stringLikeRegexp('FleetCheckStateMachine') } }),
  });
  expect(JSON.stringify(template.findResources('AWS::CloudWatch::Alarm'))).not.toContain('100 * silent / fleet');
});

it('enabled, alarms when more than 10% of the fleet is silent, on the alarm topic', () => {
  const stack = bareStack();
  const w = new SmartcarWebhooks(stack, 'W', { fleetCheck: { enabled: true } });
  // The alarm as a construct: no second synthesis (monitoring.test.ts synthesizes it with everything on).
  const alarm = w.fleetCheck.silentAlarm?.node.defaultChild as cloudwatch.CfnAlarm;
  const props = stack.resolve(alarm._toCloudFormation()).Resources[stack.getLogicalId(alarm)].Properties;
  expect(props).toMatchObject({
    Threshold: 10,
    ComparisonOperator: 'GreaterThanThreshold',
    AlarmActions: [{ Ref: expect.stringMatching(/MonitoringAlarmTopic/) }],
  });
  expect(JSON.stringify(props.Metrics)).toContain('IF(fleet > 0, 100 * silent / fleet, 0)');
});

it('calls Athena on its own workgroup only, and S3 on no bucket but the lake and the results', () => {
  const statements = Object.entries(template.findResources('AWS::IAM::Policy'))
    .filter(([id]) => id.includes('FleetCheck'))
    .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as { Action: string | string[]; Resource: unknown }[]);
  for (const s of statements) {
    const actions = ([] as string[]).concat(s.Action);
    if (actions.some((a) => a.startsWith('s3:'))) expect(s.Resource).not.toBe('*');
    if (actions.some((a) => a.startsWith('athena:'))) expect(JSON.stringify(s.Resource)).toContain(':workgroup/');
  }
  expect(statements.some((s) => s.Resource === '*' && s.Action === 'cloudwatch:PutMetricData')).toBe(true);
});

it('runs the check and the report as single statements Athena can parse, with the views inlined', () => {
  const parser = new Parser();
  for (const select of [FLEET_CHECK_SELECT, SILENT_REPORT_SELECT]) {
    const sql = withViews(athenaDialect('smartcar'), select);
    expect(sql).toMatch(/^WITH "recent_deliveries" AS \(/);
    expect(sql).toContain('"smartcar"."deliveries"');
    expect(() => parser.astify(sql, { database: 'athena' })).not.toThrow();
  }
});
