/**
 * Two deployed places, with the AWS SDK mocked: the raw zone's old versions (a version left behind a
 * delete marker, or by a replay that moved records, is searched and deleted when it holds the subject),
 * and the state table under a user's erasure (only the signals that came from the user's deliveries; a
 * mode's vehicle item only once none of its signals is left).
 */
import {
  BatchWriteItemCommand,
  ConditionalCheckFailedException,
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
} from '@aws-sdk/client-dynamodb';
import { DeleteObjectCommand, GetObjectCommand, ListObjectVersionsCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { decodeStateItem, encodeStateItem } from '../../lambda/adapters/dynamodb-state-store';
import { rawVersionsPlace, stateTablePlace } from '../../lambda/adapters/erasure-places';
import type { ErasureContext, PlaceResult, Subject } from '../../lambda/core/erasure';
import { encodeNdjsonGzip, toLakeRecord } from '../../lambda/core/lake';
import type { SignalState, VehicleState } from '../../lambda/core/vehicle-state';
import { vehicleState } from '../support/fixtures';
import { deliveryMessage } from '../support/lake';

const s3 = mockClient(S3Client);
const ddb = mockClient(DynamoDBClient);
afterEach(() => {
  s3.reset();
  ddb.reset();
});

const VEHICLE = 'veh-erase-0000001';
const OTHER = 'veh-other-0000002';

function context(subject: Subject, dryRun: boolean, extra: Partial<ErasureContext> = {}): ErasureContext {
  return {
    subject,
    erasedAt: new Date('2026-12-01T00:00:00Z'),
    dryRun,
    vehicleIds: new Set(subject.kind === 'vehicle' ? [subject.id] : []),
    eventIds: new Set(),
    ...extra,
  };
}

const object = (vehicle: string) =>
  encodeNdjsonGzip([
    toLakeRecord(
      deliveryMessage(vehicleState(`evt-${vehicle}`, { vehicleId: vehicle }), '2026-11-01T00:00:00.000Z'),
      new Date(),
    ),
  ]);

describe('the raw zone’s old versions', () => {
  beforeEach(() => {
    s3.on(ListObjectVersionsCommand).resolves({
      Versions: [
        // Behind a delete marker (expired by the lifecycle): the subject's, and another vehicle's.
        { Key: 'raw/a.ndjson.gz', VersionId: 'a1', IsLatest: false },
        { Key: 'raw/b.ndjson.gz', VersionId: 'b1', IsLatest: false },
        // A current version is the sweep's business, not this place's.
        { Key: 'raw/c.ndjson.gz', VersionId: 'c2', IsLatest: true },
      ],
      DeleteMarkers: [
        { Key: 'raw/a.ndjson.gz', VersionId: 'a2', IsLatest: true },
        { Key: 'raw/b.ndjson.gz', VersionId: 'b2', IsLatest: true },
      ],
    });
    s3.on(GetObjectCommand, { VersionId: 'a1' }).resolves({ Body: body(object(VEHICLE)) } as never);
    s3.on(GetObjectCommand, { VersionId: 'b1' }).resolves({ Body: body(object(OTHER)) } as never);
  });

  const body = (bytes: Buffer) => ({ transformToByteArray: async () => new Uint8Array(bytes) });

  it('deletes the old version holding the subject and nothing else; a dry run only counts', async () => {
    const place = rawVersionsPlace(new S3Client({}), 'lake', 'raw');
    const dry = (await place.erase(context({ kind: 'vehicle', id: VEHICLE }, true))) as PlaceResult;
    expect([dry.found, dry.removed]).toEqual([1, 0]);
    expect(s3.commandCalls(DeleteObjectCommand)).toHaveLength(0);

    const real = (await place.erase(context({ kind: 'vehicle', id: VEHICLE }, false))) as PlaceResult;
    expect([real.found, real.removed]).toEqual([1, 1]);
    expect(s3.commandCalls(DeleteObjectCommand).map((c) => c.args[0].input)).toEqual([
      { Bucket: 'lake', Key: 'raw/a.ndjson.gz', VersionId: 'a1' },
    ]);
    // Only noncurrent versions were read.
    expect(
      s3
        .commandCalls(GetObjectCommand)
        .map((c) => c.args[0].input.VersionId)
        .sort(),
    ).toEqual(['a1', 'a1', 'b1', 'b1']);
  });
});

describe("the state table under a user's erasure", () => {
  const item = (vehicleId: string, sk: string, eventId?: string) => ({
    vehicleId: { S: vehicleId },
    sk: { S: sk },
    ...(eventId ? { eventId: { S: eventId } } : {}),
  });

  it("deletes only the signals from the user's deliveries, and a vehicle item once its mode has none left", async () => {
    ddb.on(QueryCommand, { ExpressionAttributeValues: { ':v': { S: VEHICLE } } }).resolves({
      // Live: the user's two signals only. Simulated: one of theirs, one from another user's later delivery.
      Items: [
        item(VEHICLE, 'live#vehicle'),
        item(VEHICLE, 'live#signal#a', 'evt-user-1'),
        item(VEHICLE, 'live#signal#b', 'evt-user-2'),
        item(VEHICLE, 'simulated#vehicle'),
        item(VEHICLE, 'simulated#signal#a', 'evt-user-3'),
        item(VEHICLE, 'simulated#signal#b', 'evt-someone-else'),
      ],
    });
    ddb.on(BatchWriteItemCommand).resolves({});
    const place = stateTablePlace(new DynamoDBClient({}), 'state');
    const result = (await place.erase(
      context({ kind: 'user', id: 'usr-erase-000001' }, false, {
        vehicleIds: new Set([VEHICLE]),
        eventIds: new Set(['evt-user-1', 'evt-user-2', 'evt-user-3']),
      }),
    )) as PlaceResult;
    const deleted = ddb
      .commandCalls(BatchWriteItemCommand)
      .flatMap((c) => c.args[0].input.RequestItems?.state ?? [])
      .map((w) => w.DeleteRequest?.Key?.sk?.S)
      .sort();
    expect(deleted).toEqual(['live#signal#a', 'live#signal#b', 'live#vehicle', 'simulated#signal#a']);
    expect(result.found).toBe(4);
  });

  /** A current-shape item (one per vehicle and mode) whose signals came from the given events. */
  const stateItem = (mode: string, version: number, signals: Record<string, string>) => {
    const state: VehicleState = {
      vehicleId: VEHICLE,
      mode,
      make: 'TESLA',
      model: null,
      year: null,
      lastDeliveryAt: '2026-11-01T00:00:00.000Z',
      signals: Object.fromEntries(
        Object.entries(signals).map(([code, eventId]): [string, SignalState] => [
          code,
          {
            code,
            name: null,
            group: null,
            body: '1',
            oemUpdatedAt: 1,
            fetchedAt: null,
            receivedAt: '2026-11-01T00:00:00.000Z',
            eventId,
          },
        ]),
      ),
    };
    return encodeStateItem(state, version);
  };

  it("removes the user's signals from a vehicle's item, conditional on its version, and redoes it after losing a race", async () => {
    ddb.on(QueryCommand).resolves({
      Items: [
        stateItem('live', 3, { a: 'evt-user-1', b: 'evt-someone-else' }),
        stateItem('simulated', 1, { a: 'evt-user-3' }),
      ] as never,
    });
    // The state function writes live's version 4 (a new signal c) between the erasure's read and write.
    ddb
      .on(PutItemCommand)
      .rejectsOnce(new ConditionalCheckFailedException({ message: 'version moved', $metadata: {} }))
      .resolves({});
    ddb.on(GetItemCommand).resolves({
      Item: stateItem('live', 4, { a: 'evt-user-1', b: 'evt-someone-else', c: 'evt-user-2' }) as never,
    });
    ddb.on(DeleteItemCommand).resolves({});
    const result = (await stateTablePlace(new DynamoDBClient({}), 'state').erase(
      context({ kind: 'user', id: 'usr-erase-000001' }, false, {
        vehicleIds: new Set([VEHICLE]),
        eventIds: new Set(['evt-user-1', 'evt-user-2', 'evt-user-3']),
      }),
    )) as PlaceResult;
    const puts = ddb.commandCalls(PutItemCommand).map((c) => c.args[0].input);
    expect(puts.map((p) => p.ExpressionAttributeValues?.[':expected'].N)).toEqual(['3', '4']);
    const written = decodeStateItem(puts[1].Item as never);
    expect(written.version).toBe(5);
    expect(Object.keys(written.state.signals)).toEqual(['b']); // what came from someone else stays
    // Simulated had only the user's signal: the item goes, conditional on its version.
    expect(ddb.commandCalls(DeleteItemCommand).map((c) => c.args[0].input)).toEqual([
      expect.objectContaining({
        Key: { vehicleId: { S: VEHICLE }, sk: { S: 'simulated' } },
        ExpressionAttributeValues: { ':expected': { N: '1' } },
      }),
    ]);
    expect(result).toMatchObject({ unit: 'signals', found: 3, removed: 3 });
    expect(ddb.commandCalls(BatchWriteItemCommand)).toHaveLength(0);
  });

  it('a dry run counts the signals and writes nothing', async () => {
    ddb.on(QueryCommand).resolves({ Items: [stateItem('live', 3, { a: 'evt-user-1', b: 'x' })] as never });
    const result = (await stateTablePlace(new DynamoDBClient({}), 'state').erase(
      context({ kind: 'user', id: 'usr-erase-000001' }, true, {
        vehicleIds: new Set([VEHICLE]),
        eventIds: new Set(['evt-user-1']),
      }),
    )) as PlaceResult;
    expect(result).toMatchObject({ found: 1, removed: 0 });
    expect(ddb.commandCalls(PutItemCommand)).toHaveLength(0);
  });
});
