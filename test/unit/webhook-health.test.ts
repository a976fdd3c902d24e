/**
 * Webhook health: the mapping of Smartcar's "Get webhook" answer (published shape and lenient variants),
 * the pure judgement, and the check against the fake platform (what it publishes, what it keeps).
 */
import { METRIC } from '../../lambda/contract';
import { ApplicationTokens, SmartcarPlatform, webhookConfigOf } from '../../lambda/core/smartcar-platform';
import {
  checkWebhookHealth,
  formatWebhookHealth,
  TRANSIENT_FAILURES_BEFORE_UNHEALTHY,
  webhookConfigKey,
  webhookHealth,
} from '../../lambda/core/webhook-health';
import type { WorkStore } from '../../lambda/core/workflow';
import { FakePlatform } from '../support/fake-platform';
import { RecordingMetrics } from '../support/metrics';

const CALLBACK = 'https://abc.lambda-url.eu-west-1.on.aws/webhook';

describe('webhookConfigOf', () => {
  it('maps the published JSON:API answer', () => {
    const body = {
      data: {
        id: 'wh-1',
        type: 'webhook',
        attributes: {
          name: 'Charging Webhook',
          callbackUri: CALLBACK,
          isEnabled: true,
          errorCallbackUri: `${CALLBACK}/errors`,
          autoSubscribe: false,
        },
      },
    };
    expect(webhookConfigOf(body, 'wh-1')).toEqual({
      id: 'wh-1',
      status: 'enabled',
      verified: null,
      callbackUrl: CALLBACK,
      errorCallbackUrl: `${CALLBACK}/errors`,
      autoEnroll: false,
    });
  });

  it('is lenient: a disabled, unverified, auto-subscribing webhook in other spellings; nothing at all', () => {
    expect(
      webhookConfigOf({ data: { attributes: { isEnabled: false, isVerified: false, autoSubscribe: true } } }, 'wh'),
    ).toMatchObject({ id: 'wh', status: 'disabled', verified: false, autoEnroll: true, callbackUrl: null });
    expect(webhookConfigOf({ status: 'VERIFIED', callbackUrl: CALLBACK }, 'wh')).toMatchObject({
      status: 'verified',
      verified: true,
      callbackUrl: CALLBACK,
    });
    expect(webhookConfigOf({}, 'wh')).toEqual({
      id: 'wh',
      status: 'unknown',
      verified: null,
      callbackUrl: null,
      errorCallbackUrl: null,
      autoEnroll: null,
    });
  });
});

describe('webhookHealth', () => {
  const good = {
    id: 'wh',
    status: 'enabled',
    verified: true,
    callbackUrl: CALLBACK,
    errorCallbackUrl: null,
    autoEnroll: false,
  };
  it('is healthy when enabled, verified (or not reported) and pointed at this stack (trailing slash aside)', () => {
    expect(webhookHealth(good, { callbackUrl: CALLBACK })).toEqual({ healthy: true, problems: [] });
    expect(webhookHealth({ ...good, verified: null, callbackUrl: `${CALLBACK}/` }, { callbackUrl: CALLBACK })).toEqual({
      healthy: true,
      problems: [],
    });
    expect(webhookHealth({ ...good, callbackUrl: 'https://elsewhere.example/x' }, {}).healthy).toBe(true);
  });
  it('names every problem: disabled, unverified, another callback URL, none', () => {
    const h = webhookHealth(
      { ...good, status: 'disabled', verified: false, callbackUrl: 'https://old.example/webhook' },
      { callbackUrl: CALLBACK },
    );
    expect(h.healthy).toBe(false);
    expect(h.problems).toEqual([
      'the webhook is disabled, not enabled',
      'the callback URI is not verified',
      `the callback URI is https://old.example/webhook, not this stack's ${CALLBACK}`,
    ]);
    expect(webhookHealth({ ...good, callbackUrl: null }, { callbackUrl: CALLBACK }).problems).toEqual([
      `the webhook names no callback URI (expected ${CALLBACK})`,
    ]);
  });
  it("vehicle errors may go to either of this stack's paths; anywhere else they never arrive", () => {
    const errors = `${CALLBACK}/errors`;
    expect(
      webhookHealth({ ...good, errorCallbackUrl: errors }, { callbackUrl: CALLBACK, errorCallbackUrl: errors }).healthy,
    ).toBe(true);
    expect(webhookHealth({ ...good, errorCallbackUrl: CALLBACK }, { callbackUrl: CALLBACK }).healthy).toBe(true);
    expect(
      webhookHealth({ ...good, errorCallbackUrl: null }, { callbackUrl: CALLBACK, errorCallbackUrl: errors }).healthy,
    ).toBe(true);
    expect(
      webhookHealth(
        { ...good, errorCallbackUrl: 'https://old.example/errors' },
        { callbackUrl: CALLBACK, errorCallbackUrl: errors },
      ).problems,
    ).toEqual([`the vehicle error callback URI is https://old.example/errors, not this stack's ${errors}`]);
    expect(webhookHealth({ ...good, errorCallbackUrl: errors }, { callbackUrl: CALLBACK }).problems).toEqual([
      `the vehicle error callback URI is ${errors}, not this stack's ${CALLBACK}`,
    ]);
    // Behind a custom domain whose error URL cannot be worked out ('*'), it is not compared.
    expect(
      webhookHealth(
        { ...good, errorCallbackUrl: 'https://any.example/e' },
        { callbackUrl: CALLBACK, errorCallbackUrl: '*' },
      ).healthy,
    ).toBe(true);
  });
});

describe('checkWebhookHealth against the fake', () => {
  let fake: FakePlatform;
  let platform: SmartcarPlatform;
  const objects = new Map<string, unknown>();
  const store: WorkStore = {
    putJson: async (k, v) => void objects.set(k, JSON.parse(JSON.stringify(v))),
    getJson: async (k) => objects.get(k) as never,
    getJsonIfExists: async (k) => objects.get(k) as never,
    listKeys: async (p) => [...objects.keys()].filter((k) => k.startsWith(p)),
    uri: (k) => `mem://${k}`,
  };
  const logger = { info() {}, warn() {}, error() {} };
  beforeAll(async () => {
    fake = new FakePlatform({
      clientId: 'cid',
      clientSecret: 'csecret',
      managementToken: 'amt',
      webhookId: 'wh',
      connections: [],
    });
    const origin = await fake.start();
    platform = new SmartcarPlatform({ iam: origin, subscriptions: origin });
  });
  afterAll(() => fake.stop());
  const check = (webhookId = 'wh') => {
    const metrics = new RecordingMetrics();
    const appTokens = new ApplicationTokens(() => platform.applicationToken('cid', 'csecret'));
    return checkWebhookHealth(
      webhookId,
      { callbackUrl: CALLBACK },
      { platform, appTokens, store, logger, metrics },
    ).then((report) => ({ report, metrics }));
  };

  it('publishes 1 for a healthy webhook and keeps its configuration (no token) for reconcile', async () => {
    fake.options.webhook = { enabled: true, callbackUri: CALLBACK, autoSubscribe: true };
    const { report, metrics } = await check();
    expect(metrics.emitted).toEqual([{ name: METRIC.webhookHealthy, value: 1, unit: 'Count', dimensions: undefined }]);
    expect(report).toMatchObject({ healthy: true, published: 1, webhook: { autoEnroll: true } });
    expect(objects.get(webhookConfigKey('wh'))).toMatchObject({ webhook: { autoEnroll: true, status: 'enabled' } });
    expect(JSON.stringify(objects.get(webhookConfigKey('wh')))).not.toMatch(/app-\d|csecret/);
    expect(formatWebhookHealth(report)).toMatch(/^webhook wh: healthy \(enabled, .*auto-subscribes every vehicle\)$/);
  });

  it('publishes 0 when the webhook is disabled, and says why in one line', async () => {
    fake.options.webhook = { enabled: false, callbackUri: CALLBACK };
    const { report, metrics } = await check();
    expect(metrics.total(METRIC.webhookHealthy)).toBe(0);
    expect(metrics.emitted).toHaveLength(1);
    expect(report.published).toBe(0);
    expect(formatWebhookHealth(report)).toMatch(/^webhook wh: UNHEALTHY: the webhook is disabled, not enabled \(/);
  });

  it('publishes 0 when the webhook cannot be read (404), nothing on a transient error', async () => {
    const missing = await check('wh-gone');
    expect(missing.metrics.emitted).toEqual([expect.objectContaining({ name: METRIC.webhookHealthy, value: 0 })]);
    expect(formatWebhookHealth(missing.report)).toMatch(/^webhook wh-gone: UNKNOWN: could not read the webhook/);
    fake.options.alwaysRateLimited = true;
    try {
      const limited = await check();
      expect(limited.report.published).toBeNull();
      expect(limited.metrics.emitted).toHaveLength(0);
    } finally {
      fake.options.alwaysRateLimited = false;
    }
  });

  it(`publishes 0 once ${TRANSIENT_FAILURES_BEFORE_UNHEALTHY} checks in a row fail transiently; a good read starts the count again`, async () => {
    fake.options.webhook = { enabled: true, callbackUri: CALLBACK };
    await check(); // a good read resets the count left by the test before
    fake.options.alwaysRateLimited = true;
    const published: (0 | 1 | null)[] = [];
    try {
      for (let i = 0; i < TRANSIENT_FAILURES_BEFORE_UNHEALTHY; i++) published.push((await check()).report.published);
      const third = await check();
      expect(third.report.problems.join('; ')).toMatch(/4 checks in a row could not read it/);
      published.push(third.report.published);
    } finally {
      fake.options.alwaysRateLimited = false;
    }
    expect(published).toEqual([null, null, 0, 0]);
    expect((await check()).report.published).toBe(1);
    fake.options.alwaysRateLimited = true;
    try {
      expect((await check()).report.published).toBeNull(); // counting from one again
    } finally {
      fake.options.alwaysRateLimited = false;
    }
  });

  it('a store that fails never keeps the metric from being published', async () => {
    const broken: WorkStore = {
      ...store,
      putJson: async () => {
        throw new Error('S3 is down');
      },
      getJsonIfExists: async () => {
        throw new Error('S3 is down');
      },
    };
    const checkWith = () => {
      const metrics = new RecordingMetrics();
      const appTokens = new ApplicationTokens(() => platform.applicationToken('cid', 'csecret'));
      return checkWebhookHealth(
        'wh',
        { callbackUrl: CALLBACK },
        { platform, appTokens, store: broken, logger, metrics },
      ).then((report) => ({ report, metrics }));
    };
    fake.options.webhook = { enabled: false, callbackUri: CALLBACK };
    const disabled = await checkWith();
    expect(disabled.metrics.emitted).toEqual([expect.objectContaining({ name: METRIC.webhookHealthy, value: 0 })]);
    // A transient failure whose streak cannot be read counts as a long one: 0, not silence.
    fake.options.alwaysRateLimited = true;
    try {
      const limited = await checkWith();
      expect(limited.report.published).toBe(0);
      expect(limited.metrics.emitted).toEqual([expect.objectContaining({ name: METRIC.webhookHealthy, value: 0 })]);
    } finally {
      fake.options.alwaysRateLimited = false;
    }
  });
});
