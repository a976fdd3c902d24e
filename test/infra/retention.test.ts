/**
 * Retention as configuration: one `retention` prop becomes lifecycle rules on the lake, quarantine, work
 * and results buckets, each rule that deletes scoped to a prefix, none able to reach `erasures/` (the
 * ledger in the lake bucket, the receipts in the work bucket); no transitions S3 would skip or that would
 * not pay; nonsense values fail synth with one line.
 */
import { Duration, type Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { SmartcarWebhooks, type SmartcarWebhooksProps } from '../../lib/smartcar-webhooks';
import { ConfigurationError } from '../../lib/validation';
import { bareStack } from '../support/synth';

interface Rule {
  Id: string;
  Prefix?: string;
  Status: string;
  ExpirationInDays?: number;
  NoncurrentVersionExpiration?: { NoncurrentDays: number };
  Transitions?: { StorageClass: string; TransitionInDays: number }[];
  ObjectSizeGreaterThan?: number | string;
  AbortIncompleteMultipartUpload?: unknown;
}

function build(props: SmartcarWebhooksProps = {}, stack: Stack = bareStack()) {
  const w = new SmartcarWebhooks(stack, 'W', props);
  const template = Template.fromStack(stack);
  const rulesOf = (bucket: s3.IBucket): Rule[] => {
    const id = stack.getLogicalId(bucket.node.defaultChild as s3.CfnBucket);
    return template.toJSON().Resources[id].Properties.LifecycleConfiguration?.Rules ?? [];
  };
  return {
    template,
    lake: rulesOf(w.dataLake.bucket),
    quarantine: w.quarantine ? rulesOf(w.quarantine.bucket) : [],
    work: rulesOf(w.subscriptionWorkflow.workBucket),
    results: rulesOf(w.catalog.resultsBucket),
  };
}

/** Whether a rule can remove a current or a noncurrent version. */
const deletes = (r: Rule) => r.ExpirationInDays !== undefined || r.NoncurrentVersionExpiration !== undefined;
/** Whether a rule's prefix covers any key under `erasures/`. */
/**
 * Whether a rule can reach the ledger (`erasures/ledger.json`) or the receipts (`erasures/receipts/`).
 * `erasures/pending/` (what an unfinished erasure found, ids included) is meant to expire.
 */
const reachesErasures = (r: Rule) =>
  r.Prefix === undefined ||
  'erasures/'.startsWith(r.Prefix) ||
  ['erasures/ledger.json', 'erasures/receipts/'].some((k) => k.startsWith(r.Prefix as string));

describe('retention defaults', () => {
  const b = build();

  it('keeps raw and curated until told, expires noncurrent versions after 30 days, transitions nothing', () => {
    expect(b.lake.find((r) => r.Id === 'raw-zone')).toEqual({
      Id: 'raw-zone',
      Prefix: 'raw/',
      Status: 'Enabled',
      NoncurrentVersionExpiration: { NoncurrentDays: 30 },
      AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 },
    });
    // Nothing current expires, landing objects included (one not yet stored holds deliveries answered 200).
    expect(b.lake.some((r) => r.ExpirationInDays !== undefined)).toBe(false);
    expect(b.lake.some((r) => r.Transitions)).toBe(false);
    expect(b.lake.find((r) => r.Id === 'curated-versions')).toMatchObject({
      Prefix: 'curated/',
      NoncurrentVersionExpiration: { NoncurrentDays: 30 },
    });
  });

  it('expires the quarantine after 14 days, work runs after 30, query results after 30', () => {
    expect(b.quarantine.filter(deletes).map((r) => [r.Prefix, r.ExpirationInDays])).toEqual([
      ['quarantine/', 14],
      ['recovery/', 14],
    ]);
    expect(b.work.filter(deletes).map((r) => [r.Prefix, r.ExpirationInDays])).toEqual([
      ['runs/', 30],
      ['reconcile/runs/', 30],
      ['erasures/pending/', 14],
    ]);
    expect(b.results.find((r) => r.Id === 'expire-results')?.ExpirationInDays).toBe(30);
  });
});

describe('retention set', () => {
  const b = build({
    retention: {
      raw: Duration.days(400),
      curated: Duration.days(730),
      quarantine: Duration.days(7),
      work: Duration.days(90),
      requestLog: Duration.days(3),
      queryResults: Duration.days(5),
      noncurrentVersions: Duration.days(2),
    },
  });

  it('expires the raw zone and the curated tables, never the compaction bookkeeping', () => {
    expect(b.lake.find((r) => r.Id === 'raw-zone')).toMatchObject({
      Prefix: 'raw/',
      ExpirationInDays: 400,
      NoncurrentVersionExpiration: { NoncurrentDays: 2 },
    });
    const curated = b.lake.filter((r) => r.ExpirationInDays !== undefined && r.Prefix?.startsWith('curated/'));
    expect(curated.map((r) => [r.Prefix, r.ExpirationInDays])).toEqual([
      ['curated/deliveries/', 730],
      ['curated/signals/', 730],
    ]);
    expect(b.lake.some((r) => r.ExpirationInDays !== undefined && r.Prefix?.includes('compaction'))).toBe(false);
  });

  it('sets the quarantine, work and query-result buckets', () => {
    expect(b.quarantine.filter(deletes).map((r) => r.ExpirationInDays)).toEqual([7, 7]);
    expect(b.work.filter(deletes).map((r) => r.ExpirationInDays)).toEqual([90, 90, 14]);
    expect(b.results.find((r) => r.Id === 'expire-results')?.ExpirationInDays).toBe(5);
  });

  it('scopes every rule that deletes to a prefix, none reaching erasures/ (ledger and receipts)', () => {
    for (const rules of [b.lake, b.work, b.quarantine])
      for (const r of rules.filter(deletes)) {
        expect(r.Prefix).toMatch(/\/$/);
        expect(reachesErasures(r)).toBe(false);
      }
    // The lake bucket and the work bucket hold erasures/: not even an abort rule is bucket-wide there.
    for (const r of b.lake) expect(r.Prefix).toBeDefined();
  });

  it('works with custom prefixes', () => {
    const c = build({
      rawPrefix: 'smartcar/raw',
      curatedPrefix: 'smartcar/curated',
      retention: { curated: Duration.days(9) },
    });
    expect(c.lake.filter(deletes).every((r) => r.Prefix?.startsWith('smartcar/') || r.Prefix === 'landing/')).toBe(
      true,
    );
    expect(c.lake.find((r) => r.Id === 'curated-deliveries')?.Prefix).toBe('smartcar/curated/deliveries/');
  });
});

describe('transitions', () => {
  it('moves only raw objects over 128 KB, in a rule of their own, when lifecycle asks', () => {
    const b = build({
      lifecycle: { infrequentAccessAfter: Duration.days(30) },
      retention: { raw: Duration.days(365) },
    });
    const moves = b.lake.filter((r) => r.Transitions);
    expect(moves).toEqual([
      expect.objectContaining({
        Prefix: 'raw/',
        ObjectSizeGreaterThan: 131072,
        Transitions: [{ StorageClass: 'STANDARD_IA', TransitionInDays: 30 }],
      }),
    ]);
    // The size filter is not on the expiring rule: small objects still expire.
    expect(b.lake.find((r) => r.Id === 'raw-zone')).not.toHaveProperty('ObjectSizeGreaterThan');
  });

  it('keeps lifecycle.expireAfter as the same setting as retention.raw', () => {
    const b = build({ lifecycle: { expireAfter: Duration.days(100) } });
    expect(b.lake.find((r) => r.Id === 'raw-zone')?.ExpirationInDays).toBe(100);
  });
});

describe('retention validation', () => {
  it.each<[string, SmartcarWebhooksProps, RegExp]>([
    [
      'a zero raw retention',
      { retention: { raw: Duration.days(0) } },
      /retention.raw is 0 days; use whole days from 4/,
    ],
    ['hours', { retention: { curated: Duration.hours(36) } }, /retention.curated is 1 day 12 hours; use whole days/],
    [
      'a raw retention shorter than the compaction lookback',
      { retention: { raw: Duration.days(3) } },
      /retention.raw is 3 days; give at least 4 days \(the compaction/,
    ],
    [
      'a raw retention shorter than a longer lookback',
      { retention: { raw: Duration.days(8) }, compaction: { lookbackDays: 7 } },
      /give at least 9 days/,
    ],
    [
      'a work retention under 14 days',
      { retention: { work: Duration.days(7) } },
      /retention.work is 7 days; give at least 14 days/,
    ],
    ['more than 100 years', { retention: { quarantine: Duration.days(40_000) } }, /retention.quarantine is 40000 days/],
    ['a zero request log', { retention: { requestLog: Duration.days(0) } }, /retention.requestLog/],
    [
      'two names for one setting with different values',
      { retention: { quarantine: Duration.days(7) }, quarantine: { retention: Duration.days(9) } },
      /retention.quarantine is 7 days but quarantine.retention is 9 days/,
    ],
    [
      'results retention twice',
      { retention: { queryResults: Duration.days(7) }, catalog: { resultsRetention: Duration.days(8) } },
      /catalog.resultsRetention/,
    ],
    ['a raw prefix that covers erasures/', { rawPrefix: 'erasures' }, /overlaps erasures\//],
  ])('rejects %s with a ConfigurationError naming the setting', (_label, props, message) => {
    expect(() => build(props)).toThrow(ConfigurationError);
    expect(() => build(props)).toThrow(message);
  });

  it('refuses raw or curated retention on a bucket it does not own', () => {
    const stack = bareStack();
    expect(() =>
      build(
        { existingBucket: s3.Bucket.fromBucketName(stack, 'B', 'bucket-b'), retention: { raw: Duration.days(30) } },
        stack,
      ),
    ).toThrow(/apply only to a bucket this construct creates/);
  });

  it('accepts the same value under both names', () => {
    expect(() =>
      build({ retention: { work: Duration.days(60) }, subscriptionWorkflow: { workRetention: Duration.days(60) } }),
    ).not.toThrow();
  });
});
