import { ingestBatch } from '../../lambda/core/ingest';
import { encodeNdjsonGzip, objectKey, partitionOf, partitionPrefix, toLakeRecord } from '../../lambda/core/lake';
import type { CoreLogger } from '../../lambda/core/logger';
import { MemorySeenStore } from '../../lambda/core/seen-store';
import { fixture, vehicleState } from '../support/fixtures';
import { decodeNdjsonGzip, deliveryMessage } from '../support/lake';
import { RecordingMetrics } from '../support/metrics';

const silent: CoreLogger = { info: () => {}, warn: () => {}, error: () => {} };
const INGESTED = new Date('2026-11-26T21:05:00.000Z');

describe('toLakeRecord', () => {
  it('keeps the raw body byte for byte and extracts the columns', () => {
    const raw = fixture('vehicle-state');
    const record = toLakeRecord(deliveryMessage(raw, '2026-11-26T21:04:59.123Z', 'abc'), INGESTED);
    expect(Buffer.from(record.body as string, 'utf8').equals(raw)).toBe(true);
    expect(record).toMatchObject({
      event_id: '550e8400-e29b-41d4-a716-446655440000',
      event_type: 'VEHICLE_STATE',
      mode: 'live',
      payload_version: '4.0',
      webhook_id: 'abde94ff-d57d-43b9-8d09-6020db2d977a',
      vehicle_ids: ['9af13248-3b73-4c9d-9a4b-d937ce6bc8e2'],
      delivered_at: '2024-11-18T14:32:08.000Z',
      received_at: '2026-11-26T21:04:59.123Z',
      ingested_at: '2026-11-26T21:05:00.000Z',
      request_id: 'abc',
      body_base64: null,
    });
  });

  it('keeps bytes that are not valid UTF-8 as base64 instead of mangling them', () => {
    const raw = Buffer.concat([
      Buffer.from('{"eventType":"VEHICLE_STATE","x":"'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('"}'),
    ]);
    const record = toLakeRecord(deliveryMessage(raw, '2026-11-26T21:00:00.000Z'), INGESTED);
    expect(record.body).toBeNull();
    expect(Buffer.from(record.body_base64 as string, 'base64').equals(raw)).toBe(true);
  });

  it('rejects a corrupt queue message', () => {
    expect(() => toLakeRecord({} as never, INGESTED)).toThrow(/bodyBase64/);
    expect(() => toLakeRecord(deliveryMessage('{}', 'not a date'), INGESTED)).toThrow(/receivedAt/);
  });
});

describe('key layout', () => {
  const record = toLakeRecord(deliveryMessage(fixture('vehicle-state'), '2026-11-26T21:04:59.123Z'), INGESTED);

  it('partitions by event type, mode, UTC date and hour of receipt', () => {
    expect(partitionOf(record)).toEqual({ eventType: 'VEHICLE_STATE', mode: 'live', dt: '2026-11-26', hour: '21' });
    expect(partitionPrefix('raw', partitionOf(record))).toBe(
      'raw/event_type=VEHICLE_STATE/mode=live/dt=2026-11-26/hour=21/',
    );
    expect(partitionPrefix('/lake/raw/', partitionOf(record))).toMatch(/^lake\/raw\/event_type=/);
  });

  it('keeps a signed delivery of an unknown event type under a partition of its own', () => {
    const novel = toLakeRecord(
      deliveryMessage(
        '{"eventId":"e-1","eventType":"VEHICLE_TELEPORTED","meta":{"mode":"LIVE"}}',
        '2026-01-02T03:00:00Z',
      ),
      INGESTED,
    );
    expect(partitionPrefix('raw', partitionOf(novel))).toBe(
      'raw/event_type=VEHICLE_TELEPORTED/mode=live/dt=2026-01-02/hour=03/',
    );
  });

  it('makes partition values safe as key segments', () => {
    const odd = toLakeRecord(deliveryMessage('{"eventType":"a/b c=d"}', '2026-01-02T03:00:00Z'), INGESTED);
    expect(partitionOf(odd).eventType).toBe('a_b_c_d');
    const dots = toLakeRecord(deliveryMessage('{"eventType":".."}', '2026-01-02T03:00:00Z'), INGESTED);
    expect(partitionOf(dots).eventType).toBe('UNKNOWN');
  });

  it('names an object after its messages, so a retried batch overwrites rather than duplicates', () => {
    const a = objectKey('p/', [record], ['m1', 'm2']);
    expect(a).toMatch(/^p\/20261126T210459Z-[0-9a-f]{20}\.ndjson\.gz$/);
    expect(objectKey('p/', [record], ['m2', 'm1'])).toBe(a);
    expect(objectKey('p/', [record], ['m1', 'm3'])).not.toBe(a);
  });

  it('round-trips records through gzip NDJSON', () => {
    expect(decodeNdjsonGzip(encodeNdjsonGzip([record, record]))).toEqual([record, record]);
  });
});

describe('ingestBatch', () => {
  const at = '2026-11-26T21:04:59.000Z';
  const otherVehicleState = vehicleState('650e8400-e29b-41d4-a716-446655440001');
  const messages = [
    { id: 'm1', body: JSON.stringify(deliveryMessage(fixture('vehicle-state'), at)) },
    { id: 'm2', body: JSON.stringify(deliveryMessage(otherVehicleState, '2026-11-26T21:30:00.000Z')) },
    { id: 'm3', body: JSON.stringify(deliveryMessage(fixture('vehicle-error'), at)) },
    { id: 'm4', body: JSON.stringify(deliveryMessage(fixture('schedule-legacy'), at)) },
    { id: 'm5', body: JSON.stringify(deliveryMessage(fixture('vehicle-state-variant'), at)) },
  ];

  it('writes one object per partition holding every record of that partition', async () => {
    const puts = new Map<string, Buffer>();
    const result = await ingestBatch(messages, {
      rawPrefix: 'raw',
      logger: silent,
      now: () => INGESTED,
      putObject: async (key, body) => {
        puts.set(key, body);
      },
    });
    expect(result.failedIds).toEqual([]);
    expect(result.recordsWritten).toBe(5);
    const prefixes = [...puts.keys()].map((k) => k.replace(/[^/]+$/, '')).sort();
    expect(prefixes).toEqual([
      'raw/event_type=VEHICLE_ERROR/mode=live/dt=2026-11-26/hour=21/',
      'raw/event_type=VEHICLE_STATE/mode=live/dt=2026-11-26/hour=21/',
      'raw/event_type=VEHICLE_STATE/mode=test/dt=2026-11-26/hour=21/',
      'raw/event_type=schedule/mode=live/dt=2026-11-26/hour=21/',
    ]);
    const liveState = [...puts].find(([k]) => k.includes('VEHICLE_STATE/mode=live'));
    expect(decodeNdjsonGzip(liveState?.[1] as Buffer).map((r) => r.received_at)).toEqual([
      at,
      '2026-11-26T21:30:00.000Z',
    ]);
  });

  it('reports only the messages of a partition whose write failed', async () => {
    const result = await ingestBatch(messages, {
      rawPrefix: 'raw',
      logger: silent,
      putObject: async (key) => {
        if (key.includes('VEHICLE_STATE/mode=live')) throw new Error('SlowDown');
      },
    });
    expect(result.failedIds.sort()).toEqual(['m1', 'm2']);
    expect(result.recordsWritten).toBe(3);
  });

  it('stores a delivery repeated within a batch once, and counts it', async () => {
    const metrics = new RecordingMetrics();
    const puts: Buffer[] = [];
    const again = {
      id: 'm1-again',
      body: JSON.stringify(deliveryMessage(fixture('vehicle-state'), '2026-11-26T21:05:30.000Z')),
    };
    const result = await ingestBatch([messages[0], again, messages[2]], {
      rawPrefix: 'raw',
      logger: silent,
      metrics,
      putObject: async (_key, body) => {
        puts.push(body);
      },
    });
    expect(result).toMatchObject({ failedIds: [], recordsWritten: 2, duplicates: 1 });
    expect(
      puts
        .flatMap((b) => decodeNdjsonGzip(b))
        .map((r) => r.event_id)
        .sort(),
    ).toEqual(['550e8400-e29b-41d4-a716-446655440000', 'c0ffee00-1369-45da-a61c-9e67d092d6db']);
    expect(metrics.total('DuplicatesDropped')).toBe(1);
    expect(metrics.total('RecordsWritten')).toBe(2);
    expect(metrics.total('ObjectsWritten')).toBe(2);
  });

  it('counts Deliveries once per batch by event type and mode (the receiver writes no line per request)', async () => {
    const metrics = new RecordingMetrics();
    const failing = new Set<string>();
    const result = await ingestBatch(messages, {
      rawPrefix: 'raw',
      logger: silent,
      metrics,
      putObject: async (key) => {
        if (failing.has(key)) throw new Error('SlowDown');
      },
    });
    const deliveries = metrics.emitted.filter((m) => m.name === 'Deliveries');
    expect(deliveries.reduce((n, m) => n + m.value, 0)).toBe(result.recordsWritten);
    // One line per kind, each with its own dimensions.
    expect(new Set(deliveries.map((m) => JSON.stringify(m.dimensions))).size).toBe(deliveries.length);
    for (const m of deliveries) expect(Object.keys(m.dimensions ?? {}).sort()).toEqual(['EventType', 'Mode']);
    // Records whose object could not be written are not counted.
    const metricsOnFailure = new RecordingMetrics();
    await ingestBatch(messages, {
      rawPrefix: 'raw',
      logger: silent,
      metrics: metricsOnFailure,
      putObject: async () => {
        throw new Error('SlowDown');
      },
    });
    expect(metricsOnFailure.total('Deliveries')).toBe(0);
  });

  it('retries a duplicate together with its first copy when that one could not be written', async () => {
    const again = { id: 'm1-again', body: JSON.stringify(deliveryMessage(fixture('vehicle-state'), at)) };
    const result = await ingestBatch([messages[0], again, messages[2]], {
      rawPrefix: 'raw',
      logger: silent,
      putObject: async (key) => {
        if (key.includes('VEHICLE_STATE')) throw new Error('SlowDown');
      },
    });
    expect(result.failedIds.sort()).toEqual(['m1', 'm1-again']);
  });

  it('does not store again what an earlier batch stored, and remembers only what it wrote', async () => {
    const seen = new MemorySeenStore(60_000);
    const put = async () => {};
    const first = await ingestBatch(messages.slice(0, 2), { rawPrefix: 'raw', logger: silent, seen, putObject: put });
    expect(first).toMatchObject({ recordsWritten: 2, duplicates: 0 });
    const retried = { id: 'm1-retry', body: messages[0].body };
    const second = await ingestBatch([retried, messages[2]], {
      rawPrefix: 'raw',
      logger: silent,
      seen,
      putObject: put,
    });
    expect(second).toMatchObject({ recordsWritten: 1, duplicates: 1, failedIds: [] });

    // A write that fails is not remembered, so the retry stores it.
    const failing = await ingestBatch([messages[3]], {
      rawPrefix: 'raw',
      logger: silent,
      seen,
      putObject: async () => Promise.reject(new Error('SlowDown')),
    });
    expect(failing.failedIds).toEqual(['m4']);
    expect(await ingestBatch([messages[3]], { rawPrefix: 'raw', logger: silent, seen, putObject: put })).toMatchObject({
      recordsWritten: 1,
    });
  });

  it('stores everything when the deduplication look-up fails (a duplicate, never a loss)', async () => {
    const broken = { unseen: async () => Promise.reject(new Error('ThrottlingException')), markSeen: async () => {} };
    const result = await ingestBatch(messages.slice(0, 2), {
      rawPrefix: 'raw',
      logger: silent,
      seen: broken,
      putObject: async () => {},
    });
    expect(result).toMatchObject({ recordsWritten: 2, failedIds: [] });
  });

  it('reports how late the newest batch reached the lake', async () => {
    const metrics = new RecordingMetrics();
    await ingestBatch(messages.slice(0, 2), {
      rawPrefix: 'raw',
      logger: silent,
      metrics,
      now: () => new Date('2026-11-26T21:31:00.000Z'),
      putObject: async () => {},
    });
    expect(metrics.emitted.find((m) => m.name === 'IngestLag')).toMatchObject({
      value: 26 * 60_000 + 1000,
      unit: 'Milliseconds',
    });
  });

  it('reports an undecodable message and still writes the rest', async () => {
    const keys: string[] = [];
    const result = await ingestBatch([{ id: 'bad', body: 'not json' }, messages[2]], {
      rawPrefix: 'raw',
      logger: silent,
      putObject: async (key) => {
        keys.push(key);
      },
    });
    expect(result.failedIds).toEqual(['bad']);
    expect(keys).toHaveLength(1);
  });
});
