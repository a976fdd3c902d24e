/**
 * The two front doors: an HTTP API (the default, as the brief names it) and a Function URL (the cheapest,
 * one prop away), each sized from the expected peak, each alarmed on throttling, both handing the same
 * verification function the same event.
 */
import { Match, Template } from 'aws-cdk-lib/assertions';
import { frontDoorCapacity, ReceiverEndpoint } from '../../lib/receiver';
import { SmartcarWebhooks, type SmartcarWebhooksProps } from '../../lib/smartcar-webhooks';
import { settingsFromContext } from '../../lib/smartcar-webhooks-stack';
import { ConfigurationError } from '../../lib/validation';
import { bareStack, defaultStack, synthStack } from '../support/synth';

const httpApi = synthStack().template;
let functionUrl: Template;
beforeAll(() => {
  functionUrl = synthStack({ settings: { endpoint: ReceiverEndpoint.FUNCTION_URL } }).template;
});

function verifyFunction(template: Template) {
  const [fn] = Object.values(template.findResources('AWS::Lambda::Function')).filter((f) =>
    String(f.Properties.Description).startsWith('Answers Smartcar VERIFY'),
  );
  return fn.Properties;
}

describe('Function URL (one prop or context value away)', () => {
  it('is public like any webhook endpoint, with no API Gateway at all', () => {
    functionUrl.hasResourceProperties('AWS::Lambda::Url', {
      AuthType: 'NONE',
      TargetFunctionArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('ReceiverVerifyFunction'), 'Arn'] },
    });
    functionUrl.resourceCountIs('AWS::ApiGatewayV2::Api', 0);
  });

  it('is throttled by reserved concurrency sized from the expected peak (500/s by default)', () => {
    expect(verifyFunction(functionUrl).ReservedConcurrentExecutions).toBe(frontDoorCapacity(500).reservedConcurrency);
    expect(frontDoorCapacity(500)).toEqual({ rateLimit: 2500, burstLimit: 2500, reservedConcurrency: 125 });
  });

  it('tells the function its callback path, which it then checks itself', () => {
    expect(verifyFunction(functionUrl).Environment.Variables.SMARTCAR_CALLBACK_PATH).toBe('/webhooks');
  });

  it("alarms on its 5xx, p99 latency above 5 s and throttling, from Lambda's own Url metrics", () => {
    const fn = [{ Name: 'FunctionName', Value: { Ref: Match.stringLikeRegexp('ReceiverVerifyFunction') } }];
    const alarm = (MetricName: string, extra: Record<string, unknown>) =>
      functionUrl.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName, Namespace: 'AWS/Lambda', ...extra });
    alarm('Url5xxCount', { Dimensions: fn, Statistic: 'Sum', Threshold: 1 });
    alarm('UrlRequestLatency', {
      ExtendedStatistic: 'p99',
      Threshold: 5000,
      ComparisonOperator: 'GreaterThanThreshold',
    });
    alarm('Throttles', { Dimensions: fn, Statistic: 'Sum', Threshold: 1 });
  });
});

describe('HTTP API (default)', () => {
  it('has a single POST callback route to the verification function, which then checks no path itself', () => {
    httpApi.resourceCountIs('AWS::ApiGatewayV2::Api', 1);
    httpApi.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'POST /webhooks' });
    httpApi.hasResourceProperties('AWS::ApiGatewayV2::Integration', {
      IntegrationType: 'AWS_PROXY',
      PayloadFormatVersion: '2.0',
    });
    httpApi.resourceCountIs('AWS::Lambda::Url', 0);
    const fn = verifyFunction(httpApi);
    expect(fn.Environment.Variables.SMARTCAR_CALLBACK_PATH).toBeUndefined();
    expect(fn.ReservedConcurrentExecutions).toBeUndefined();
  });

  it('throttles the stage from the expected peak (500/s by default) and writes access logs', () => {
    httpApi.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      DefaultRouteSettings: { ThrottlingRateLimit: 2500, ThrottlingBurstLimit: 2500 },
      AccessLogSettings: {
        DestinationArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('ReceiverAccessLogs'), 'Arn'] },
        Format: Match.stringLikeRegexp('\\$context.apiId'),
      },
    });
  });

  it('counts 429s from the access log per API and alarms on them', () => {
    httpApi.hasResourceProperties('AWS::Logs::MetricFilter', {
      FilterPattern: '{ $.status = "429" }',
      MetricTransformations: [
        Match.objectLike({ MetricName: 'FrontDoorThrottled', Dimensions: [{ Key: 'ApiId', Value: '$.apiId' }] }),
      ],
    });
    httpApi.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'FrontDoorThrottled',
      Dimensions: [{ Name: 'ApiId', Value: { Ref: Match.stringLikeRegexp('ReceiverApi') } }],
      Threshold: 1,
    });
    httpApi.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: '5xx', Namespace: 'AWS/ApiGateway' });
  });
});

describe('sizing', () => {
  it('admits every attempt of a token mistake at the peak (4 × peak, + 25%): the HTTP API by rate and burst, the Function URL at 50 ms a request', () => {
    expect(frontDoorCapacity(1)).toEqual({ rateLimit: 50, burstLimit: 100, reservedConcurrency: 10 });
    expect(frontDoorCapacity(2000)).toEqual({ rateLimit: 10_000, burstLimit: 10_000, reservedConcurrency: 500 });
  });

  it('explicit throttle and reserved concurrency win over the sizing', () => {
    const stack = bareStack();
    const w = new SmartcarWebhooks(stack, 'W', {
      endpoint: ReceiverEndpoint.FUNCTION_URL,
      reservedConcurrency: 7,
      expectedPeakDeliveriesPerSecond: 9000,
    });
    expect(w.receiver.endpoint).toBe(ReceiverEndpoint.FUNCTION_URL);
    expect(new SmartcarWebhooks(bareStack(), 'W', {}).receiver.endpoint).toBe(ReceiverEndpoint.HTTP_API);
    // A JavaScript caller (or a cast) can still pass any string: it is refused with the enum's members.
    expect(() => new SmartcarWebhooks(bareStack(), 'W', { endpoint: 'rest-api' as ReceiverEndpoint })).toThrow(
      /endpoint "rest-api" is not a front door: use ReceiverEndpoint.FUNCTION_URL or ReceiverEndpoint.HTTP_API/,
    );
    expect(() => new SmartcarWebhooks(bareStack(), 'W', { expectedPeakDeliveriesPerSecond: 0 })).toThrow(
      /expectedPeakDeliveriesPerSecond is 0/,
    );
  });

  it('reads the front door, the peak and deduplication from context', () => {
    const ctx: Record<string, string> = {
      endpoint: 'http-api',
      expectedPeakDeliveriesPerSecond: '800',
      deduplication: 'true',
    };
    expect(settingsFromContext((k) => ctx[k])).toMatchObject({
      endpoint: ReceiverEndpoint.HTTP_API,
      expectedPeakDeliveriesPerSecond: 800,
      deduplication: true,
    });
    expect(() => settingsFromContext((k) => ({ endpoint: 'rest' })[k])).toThrow(/Context "endpoint"/);
    expect(() => settingsFromContext((k) => ({ expectedPeakDeliveriesPerSecond: '1.5' })[k])).toThrow(
      /expectedPeakDeliveriesPerSecond/,
    );
  });
});

describe('the vehicle error callback (errorCallbackPath, issue 22)', () => {
  const ERRORS = '/webhooks/errors';
  const build = (endpoint: ReceiverEndpoint, more: Partial<SmartcarWebhooksProps> = {}) => {
    const stack = bareStack();
    const webhooks = new SmartcarWebhooks(stack, 'W', {
      endpoint,
      errorCallbackPath: ERRORS,
      outputs: { prefix: '' },
      ...more,
    });
    return { webhooks, template: Template.fromStack(stack) };
  };

  it('is off by default: no second path, no output', () => {
    expect(verifyFunction(functionUrl).Environment.Variables.SMARTCAR_ERROR_CALLBACK_PATH).toBeUndefined();
    expect(Object.keys(functionUrl.findOutputs('ErrorCallbackUrl'))).toEqual([]);
    httpApi.resourceCountIs('AWS::ApiGatewayV2::Route', 1);
  });

  it('Function URL: the function is told both paths and answers both; the output is the URL with the error path', () => {
    const { webhooks, template } = build(ReceiverEndpoint.FUNCTION_URL);
    const env = verifyFunction(template).Environment.Variables;
    expect(env).toMatchObject({ SMARTCAR_CALLBACK_PATH: '/webhooks', SMARTCAR_ERROR_CALLBACK_PATH: ERRORS });
    template.resourceCountIs('AWS::Lambda::Url', 1);
    const [output] = Object.values(template.findOutputs('ErrorCallbackUrl'));
    expect(output.Description).toMatch(/^\[smartcar-webhooks:default\] .*vehicle error callback URI/);
    expect(JSON.stringify(output.Value)).toMatch(/ReceiverVerifyFunctionFunctionUrl.*"webhooks\/errors"/);
    expect(webhooks.errorCallbackUrl).toBeDefined();
  });

  it('HTTP API: a second POST route to the same integration, each route allowed to invoke the function', () => {
    const { template } = build(ReceiverEndpoint.HTTP_API);
    const routes = Object.values(template.findResources('AWS::ApiGatewayV2::Route')).map((r) => r.Properties);
    expect(routes.map((r) => r.RouteKey).sort()).toEqual(['POST /webhooks', `POST ${ERRORS}`]);
    expect(routes[0].Target).toEqual(routes[1].Target);
    template.resourceCountIs('AWS::ApiGatewayV2::Integration', 1);
    const permissions = Object.values(template.findResources('AWS::Lambda::Permission'))
      .map((p) => JSON.stringify(p.Properties.SourceArn))
      .filter((arn) => arn.includes('execute-api'));
    expect(permissions).toHaveLength(2);
    expect(permissions.some((arn) => arn.includes('/*/*/webhooks/errors"'))).toBe(true);
    expect(verifyFunction(template).Environment.Variables.SMARTCAR_ERROR_CALLBACK_PATH).toBeUndefined();
    const [output] = Object.values(template.findOutputs('ErrorCallbackUrl'));
    expect(JSON.stringify(output.Value)).toMatch(/ApiEndpoint.*\/webhooks\/errors/);
  });

  it('is refused when it is not a path or is the callback path itself', () => {
    expect(() => build(ReceiverEndpoint.FUNCTION_URL, { errorCallbackPath: 'errors' })).toThrow(
      /^errorCallbackPath "errors" must start with "\/"/,
    );
    expect(() => build(ReceiverEndpoint.HTTP_API, { errorCallbackPath: '/errors/{id}' })).toThrow(
      /errorCallbackPath "\/errors\/\{id\}"/,
    );
    expect(() => build(ReceiverEndpoint.HTTP_API, { errorCallbackPath: '/webhooks' })).toThrow(
      /^errorCallbackPath "\/webhooks" is the callbackPath; give another path \(e.g. "\/webhooks\/errors"\)/,
    );
    expect(() => build(ReceiverEndpoint.FUNCTION_URL, { callbackPath: '/in', errorCallbackPath: '/in' })).toThrow(
      ConfigurationError,
    );
  });

  it('is read from context (errorCallbackPath) and reaches the construct', () => {
    expect(settingsFromContext((k) => ({ errorCallbackPath: ERRORS })[k])).toMatchObject({ errorCallbackPath: ERRORS });
    expect(settingsFromContext((k) => ({ errorCallbackPath: '' })[k]).errorCallbackPath).toBeUndefined();
    expect(() => settingsFromContext((k) => ({ errorCallbackPath: 'errors' })[k])).toThrow(
      /^Context "errorCallbackPath" "errors" must start with "\/"/,
    );
    expect(defaultStack({ settings: { errorCallbackPath: ERRORS } }).webhooks.errorCallbackUrl).toBeDefined();
    expect(defaultStack().webhooks.errorCallbackUrl).toBeUndefined();
  });
});
