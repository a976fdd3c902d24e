/**
 * The one price table `npm run bench:cost` multiplies its measured counts by. US East (N. Virginia) list
 * prices, on-demand, past every free tier and at the first paid tier, as published on each service's
 * pricing page (the `source` of each entry). Update the figures and `asOf` together; the README's cost
 * section is generated from the bench's output, so it follows.
 */
export const PRICES = {
  asOf: '2026-12-04',
  region: 'us-east-1',
  /** What a month costs whether or not anything is delivered. */
  monthly: {
    /** Per secret stored, prorated by the hour. */
    secret: 0.4,
    /** Per standard-resolution alarm metric (an alarm on a metric-math expression counts each metric in it). */
    alarmMetric: 0.1,
    /** Per dashboard beyond the account's first three. */
    dashboard: 3.0,
    /** Per custom metric (name and dimensions), prorated by the hours it is published in (first 10,000). */
    customMetric: 0.3,
    sources: ['https://aws.amazon.com/secrets-manager/pricing/', 'https://aws.amazon.com/cloudwatch/pricing/'],
  },
  apiGateway: {
    /** HTTP API, per million requests (first 300 million a month), metered in 512 KB increments. */
    httpApiPerMillion: 1.0,
    httpApiIncrementBytes: 512 * 1024,
    source: 'https://aws.amazon.com/api-gateway/pricing/',
  },
  lambda: {
    /** Per million requests (Function URL requests are ordinary invocations; the URL itself is free). */
    requestsPerMillion: 0.2,
    /** Per GB-second, Arm. Since August 2025 the INIT phase is billed too. */
    gbSecondArm: 0.0000133334,
    source: 'https://aws.amazon.com/lambda/pricing/',
  },
  sqs: {
    /** Standard queue, per million requests; every 64 KB chunk of a payload is one request. */
    requestsPerMillion: 0.4,
    chunkBytes: 64 * 1024,
    source: 'https://aws.amazon.com/sqs/pricing/',
  },
  s3: {
    /** S3 Standard, per 1,000 PUT, COPY, POST or LIST requests. */
    putPerThousand: 0.005,
    /** Per 1,000 GET (and other) requests. */
    getPerThousand: 0.0004,
    /** Per GB-month stored, S3 Standard (first 50 TB); lifecycle expirations are not billed. */
    storageGbMonth: 0.023,
    source: 'https://aws.amazon.com/s3/pricing/',
  },
  firehose: {
    /** Direct PUT ingestion, per GB (first 500 TB a month), each record rounded up to the next 5 KB. */
    directPutPerGb: 0.029,
    source: 'https://aws.amazon.com/firehose/pricing/',
  },
  dynamodb: {
    /** On-demand, per million write request units (1 KB each) and read request units (4 KB; half for eventually consistent). */
    writeUnitsPerMillion: 0.625,
    readUnitsPerMillion: 0.125,
    source: 'https://aws.amazon.com/dynamodb/pricing/on-demand/',
  },
  secretsManager: {
    /** Per 10,000 API calls (the $0.40 per secret-month is a fixed cost, not per delivery). */
    callsPerTenThousand: 0.05,
    source: 'https://aws.amazon.com/secrets-manager/pricing/',
  },
  cloudWatchLogs: {
    /** Per GB ingested, standard class (Lambda's vended logs start at the same price). */
    ingestedPerGb: 0.5,
    /** Per GB-month archived (compressed; we count the ingested bytes: an upper bound). */
    storedGbMonth: 0.03,
    source: 'https://aws.amazon.com/cloudwatch/pricing/',
  },
  eventBridge: {
    /** Custom events put on a bus, per million; every 64 KB chunk of an entry counts as one event. */
    customEventsPerMillion: 1.0,
    chunkBytes: 64 * 1024,
    source: 'https://aws.amazon.com/eventbridge/pricing/',
  },
  athena: {
    /** Per TB scanned, rounded up to 10 MB per query. */
    perTbScanned: 5.0,
    minimumBytesPerQuery: 10 * 1024 * 1024,
    source: 'https://aws.amazon.com/athena/pricing/',
  },
  stepFunctions: {
    /** Standard workflows, per 1,000 state transitions. */
    transitionsPerThousand: 0.025,
    source: 'https://aws.amazon.com/step-functions/pricing/',
  },
} as const;
