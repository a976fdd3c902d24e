import { bodyHashId, parseBody, readEnvelope, toIsoTime } from '../../lambda/core/envelope';
import { type FixtureName, fixture } from '../support/fixtures';

function envelopeOf(body: Buffer | string) {
  const raw = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const parsed = parseBody(raw);
  if (!parsed.ok) throw new Error(parsed.reason);
  return readEnvelope(parsed.json, raw);
}

describe('parseBody', () => {
  it.each([
    ['empty body', '', 'empty body'],
    ['not JSON', 'challenge=abc', 'body is not valid JSON'],
    ['truncated JSON', '{"eventType":"VERIFY"', 'body is not valid JSON'],
    ['a JSON array', '[1,2]', 'body is not a JSON object'],
    ['a JSON string', '"hello"', 'body is not a JSON object'],
    ['JSON null', 'null', 'body is not a JSON object'],
  ])('reports %s', (_label, body, reason) => {
    expect(parseBody(Buffer.from(body))).toEqual({ ok: false, reason });
  });

  it('parses a JSON object', () => {
    expect(parseBody(Buffer.from('{"a":1}'))).toEqual({ ok: true, json: { a: 1 } });
  });
});

describe('VERIFY in both generations', () => {
  it.each<[FixtureName]>([['verify-legacy'], ['verify-current']])('%s carries the challenge', (name) => {
    const env = envelopeOf(fixture(name));
    expect(env).toMatchObject({ kind: 'verify', challenge: '3a5c8f72-e6d9-4b1a-9f2e-8c7d6a5b4e3f' });
    expect(env.fields.webhookId).toBe('5a8e5e38-1e12-4011-a36d-56f120053f9e');
  });

  it('reports a VERIFY without a challenge as such rather than as an event', () => {
    expect(envelopeOf('{"eventType":"VERIFY","data":{}}')).toMatchObject({ kind: 'verify', challenge: null });
    expect(envelopeOf('{"eventName":"verify","payload":{"challenge":42}}')).toMatchObject({
      kind: 'verify',
      challenge: null,
    });
  });
});

describe('data deliveries: extracted columns', () => {
  it('current VEHICLE_STATE', () => {
    const env = envelopeOf(fixture('vehicle-state'));
    expect(env.kind).toBe('event');
    expect(env.fields).toEqual({
      eventId: '550e8400-e29b-41d4-a716-446655440000',
      eventType: 'VEHICLE_STATE',
      mode: 'live',
      payloadVersion: '4.0',
      webhookId: 'abde94ff-d57d-43b9-8d09-6020db2d977a',
      webhookName: 'Battery Monitoring',
      deliveryId: '48b25f8f-9fea-42e1-9085-81043682cbb8',
      vehicleIds: ['9af13248-3b73-4c9d-9a4b-d937ce6bc8e2'],
      userId: '93b3ea96-ca37-43a9-9073-f4334719aaaa',
      deliveredAt: '2024-11-18T14:32:08.000Z',
    });
  });

  it('VEHICLE_STATE variant: no top-level vehicleId, ISO deliveredAt, TEST mode, top-level triggers', () => {
    const f = envelopeOf(fixture('vehicle-state-variant')).fields;
    expect(f.vehicleIds).toEqual(['9af13248-3b73-4c9d-9a4b-d937ce6bc8e2']);
    expect(f.deliveredAt).toBe('2024-11-18T14:32:08.000Z');
    expect(f.mode).toBe('test');
    expect(f.payloadVersion).toBe('3.0');
  });

  it('current VEHICLE_ERROR', () => {
    const f = envelopeOf(fixture('vehicle-error')).fields;
    expect(f).toMatchObject({
      eventType: 'VEHICLE_ERROR',
      eventId: 'c0ffee00-1369-45da-a61c-9e67d092d6db',
      mode: 'live',
    });
  });

  it('legacy schedule: body-hash id, lowercase mode, vehicles from the payload', () => {
    const raw = fixture('schedule-legacy');
    const f = envelopeOf(raw).fields;
    expect(f).toMatchObject({
      eventId: bodyHashId(raw),
      eventType: 'schedule',
      mode: 'live',
      payloadVersion: '2.0',
      webhookId: '5a8e5e38-1e12-4011-a36d-56f120053f9e',
      deliveryId: null,
      deliveredAt: null,
      vehicleIds: ['36ab27d0-fd9d-4455-823a-ce30af709ffc'],
    });
    expect(f.eventId).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('legacy eventBased: the vehicle inside the payload', () => {
    const f = envelopeOf(fixture('event-based-legacy')).fields;
    expect(f).toMatchObject({
      eventType: 'eventBased',
      mode: 'test',
      vehicleIds: ['36ab27d0-fd9d-4455-823a-ce30af709ffc'],
    });
  });

  it('a signed object that names nothing still gets a record', () => {
    const raw = Buffer.from('{"hello":"world"}');
    const f = envelopeOf(raw).fields;
    expect(f).toMatchObject({ eventType: 'UNKNOWN', mode: 'unknown', eventId: bodyHashId(raw), vehicleIds: [] });
  });

  it('odd field types are ignored, not fatal', () => {
    const f = envelopeOf(
      '{"eventId":7,"eventType":["x"],"mode":"weird mode!","meta":{"version":4,"deliveredAt":{}},"vehicleId":""}',
    ).fields;
    expect(f).toMatchObject({
      eventType: 'UNKNOWN',
      mode: 'unknown',
      payloadVersion: '4',
      deliveredAt: null,
      vehicleIds: [],
    });
    expect(f.eventId).toMatch(/^sha256:/);
  });

  it('lists every vehicle once, in order', () => {
    const f = envelopeOf(
      '{"eventName":"schedule","payload":{"vehicles":[{"vehicleId":"a"},{"vehicleId":"b"},{"vehicleId":"a"},{}]}}',
    ).fields;
    expect(f.vehicleIds).toEqual(['a', 'b']);
  });
});

describe('toIsoTime', () => {
  it.each([
    [1731940328000, '2024-11-18T14:32:08.000Z'],
    [1731940328, '2024-11-18T14:32:08.000Z'],
    ['1731940328000', '2024-11-18T14:32:08.000Z'],
    ['2024-11-18T14:32:08Z', '2024-11-18T14:32:08.000Z'],
    ['2024-11-18T15:32:08+01:00', '2024-11-18T14:32:08.000Z'],
    ['yesterday', null],
    ['', null],
    [Number.NaN, null],
    [1e20, null],
    [null, null],
    [{}, null],
  ])('%p → %p', (input, expected) => {
    expect(toIsoTime(input)).toBe(expected);
  });
});
