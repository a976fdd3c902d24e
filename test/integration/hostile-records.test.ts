/**
 * No single signed record can make a view fail. Bodies that strict JSON readers reject (a UTF-8 byte
 * order mark, bytes that are not UTF-8, escapes of lone surrogates, in values, keys and ids) are stored
 * with their raw bytes untouched, and every view still runs over a lake that holds them, in DuckDB.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import fc from 'fast-check';
import { viewSafeJson } from '../../lambda/core/envelope';
import { encodeNdjsonGzip, objectKey, partitionOf, partitionPrefix, toLakeRecord } from '../../lambda/core/lake';
import { VIEWS } from '../../lib/queries';
import { putLakeObject, readLake } from '../../local/file-lake';
import { type LocalLake, openLocalLake } from '../../local/query';
import { fixture, vehicleState } from '../support/fixtures';
import { deliveryMessage } from '../support/lake';

const AT = '2026-11-26T21:00:00.000Z';
const state = (eventId: string) => vehicleState(eventId);

/** name → raw body bytes, each signed-and-accepted in real life (the receiver parses them all). */
const HOSTILE: Record<string, Buffer> = {
  bom: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(state('evt-bom'))]),
  loneSurrogateValue: Buffer.from(state('evt-lone').replace('"unit":"percent"', '"unit":"per\\ud800cent"')),
  loneLowSurrogate: Buffer.from(state('evt-low').replace('"unit":"percent"', '"unit":"\\udfff"')),
  loneSurrogateKey: Buffer.from(state('evt-key').replace('"make":"TESLA"', '"\\ud83d":"TESLA"')),
  loneSurrogateId: Buffer.from(state('evt-\\udbff-id')),
  pairedSurrogates: Buffer.from(state('evt-pair').replace('"unit":"percent"', '"unit":"\\ud83d\\ude97"')),
  escapedBackslash: Buffer.from(state('evt-bs').replace('"unit":"percent"', '"unit":"\\\\ud800"')),
  notUtf8: Buffer.from(state('evt-latin1').replace('"model":"Model 3"', '"model":"Mod\u00e9le"'), 'latin1'),
};

let lakeDir: string;
let lake: LocalLake;

beforeAll(async () => {
  lakeDir = mkdtempSync(path.join(tmpdir(), 'hostile-lake-'));
  const bodies = [
    ...Object.values(HOSTILE),
    fixture('vehicle-state'),
    fixture('vehicle-error'),
    fixture('schedule-legacy'),
  ];
  for (const [i, body] of bodies.entries()) {
    const record = toLakeRecord(deliveryMessage(body, AT), new Date(AT));
    const prefix = partitionPrefix('raw', partitionOf(record));
    await putLakeObject(lakeDir, objectKey(prefix, [record], [`m${i}`]), encodeNdjsonGzip([record]));
  }
  lake = await openLocalLake(lakeDir);
});

afterAll(() => lake?.close());

it('keeps every raw body byte for byte', async () => {
  const records = [...(await readLake(lakeDir)).values()].flat();
  for (const body of Object.values(HOSTILE)) {
    const kept = records.filter((r) =>
      (r.body_base64 !== null ? Buffer.from(r.body_base64, 'base64') : Buffer.from(r.body ?? '', 'utf8')).equals(body),
    );
    expect(kept).toHaveLength(1);
  }
});

it.each(VIEWS.map((v) => v.name))('view %s runs over the whole lake', async (name) => {
  await expect(lake.query(`SELECT * FROM "${name}"`)).resolves.toBeInstanceOf(Array);
});

it('the hostile records are in the views, read through their view-safe JSON', async () => {
  const rows = await lake.query(
    `SELECT event_id, unit FROM signals WHERE signal_code = 'tractionbattery-stateofcharge' ORDER BY event_id`,
  );
  expect(rows).toEqual(
    expect.arrayContaining([
      { event_id: 'evt-bom', unit: 'percent' },
      { event_id: 'evt-lone', unit: 'per\ufffdcent' },
      { event_id: 'evt-low', unit: '\ufffd' },
      { event_id: 'evt-key', unit: 'percent' },
      { event_id: 'evt-\ufffd-id', unit: 'percent' },
      { event_id: 'evt-pair', unit: '\u{1f697}' },
      { event_id: 'evt-bs', unit: '\\ud800' },
      { event_id: 'evt-latin1', unit: 'percent' },
    ]),
  );
  expect(await lake.query(`SELECT COUNT(*) AS n FROM deliveries_deduplicated`)).toEqual([{ n: '11' }]);
});

it('only records that need it carry body_json', () => {
  expect(viewSafeJson(fixture('vehicle-state'))).toBeNull();
  expect(viewSafeJson(HOSTILE.pairedSurrogates)).toBeNull();
  expect(viewSafeJson(HOSTILE.escapedBackslash)).toBeNull();
  expect(viewSafeJson(HOSTILE.bom)).toBe(state('evt-bom'));
  expect(viewSafeJson(HOSTILE.loneSurrogateValue)).toContain('"unit":"per\\ufffdcent"');
});

it('property: whatever JSON object was signed, DuckDB accepts the text the views read', async () => {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    // Strings of any UTF-16 code units (lone surrogates included), serialized the way JSON.stringify
    // writes them, optionally behind a byte order mark.
    const bodies = fc.sample(
      fc.tuple(fc.boolean(), fc.dictionary(fc.string({ unit: 'binary' }), fc.jsonValue({ maxDepth: 3 }))),
      300,
    );
    for (const [bom, value] of bodies) {
      const raw = Buffer.concat([
        bom ? Buffer.from([0xef, 0xbb, 0xbf]) : Buffer.alloc(0),
        Buffer.from(JSON.stringify(value)),
      ]);
      const text = viewSafeJson(raw) ?? raw.toString('utf8');
      const reader = await connection.runAndReadAll(
        'SELECT json_valid($1::VARCHAR) AS ok, json_type($1::VARCHAR) AS t',
        [text],
      );
      expect(reader.getRowObjectsJson()).toEqual([{ ok: true, t: 'OBJECT' }]);
      expect(JSON.parse(text)).toBeInstanceOf(Object);
    }
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
});
