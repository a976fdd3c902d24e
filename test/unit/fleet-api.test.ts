/**
 * The two generations behind one interface: what each asks Smartcar (path, credential, paging) and how
 * leniently API v3's connection resources are read, with a recording fetch (no server).
 */
import { fleetApi } from '../../lambda/core/fleet-api';
import { ApplicationTokens, SmartcarPlatform } from '../../lambda/core/smartcar-platform';

function recording(answer: (url: URL) => unknown) {
  const calls: { url: URL; authorization: string | null }[] = [];
  const fetchImpl = (async (input: string, init?: RequestInit) => {
    const url = new URL(input);
    calls.push({ url, authorization: new Headers(init?.headers).get('authorization') });
    return new Response(JSON.stringify(answer(url)), { status: 200, headers: { 'content-type': 'application/json' } });
  }) as typeof fetch;
  return { calls, fetchImpl };
}

const resource = (vehicleId: string, userId: string, createdAt: string, mode = 'LIVE') => ({
  id: `conn-${vehicleId}`,
  type: 'connection',
  attributes: { vehicle: { mode } },
  relationships: { vehicle: { data: { id: vehicleId } }, user: { data: { id: userId } } },
  meta: { createdAt },
});

it('v3 lists connections by page number with the application token, never the management token', async () => {
  const { calls, fetchImpl } = recording(() => ({
    data: [resource('v1', 'u1', '2026-05-02T00:00:00Z'), resource('v2', 'u2', '2026-05-01T00:00:00Z')],
    links: { next: '/v3/connections?page[number]=3' },
  }));
  const platform = new SmartcarPlatform({ vehicle: 'https://vehicle.test' }, fetchImpl);
  const api = fleetApi('v3', platform, new ApplicationTokens(async () => ({ token: 'app', expiresIn: 3600 })), () =>
    Promise.reject(new Error('the management token must not be asked for')),
  );
  const page = await api.listConnections({ cursor: '2', mode: 'live', vehicleId: 'v1' });
  expect(page).toEqual({
    connections: [
      { vehicleId: 'v1', userId: 'u1', connectedAt: '2026-05-02T00:00:00Z', mode: 'live' },
      { vehicleId: 'v2', userId: 'u2', connectedAt: '2026-05-01T00:00:00Z', mode: 'live' },
    ],
    cursor: '3',
    malformed: 0,
    items: 2,
    total: null,
  });
  const [call] = calls;
  expect(`${call.url.origin}${call.url.pathname}`).toBe('https://vehicle.test/v3/connections');
  expect(Object.fromEntries(call.url.searchParams)).toEqual({
    'page[number]': '2',
    'page[size]': '100',
    'filter[vehicle.mode]': 'live',
    'filter[vehicleId]': 'v1',
  });
  expect(call.authorization).toBe('Bearer app');
  expect(api.endpoints).toMatch(/^API v3: connections: vehicle\.api\.smartcar\.com\/v3\/connections/);
});

it('v3 reads flat items too, counts the rest as malformed, and ends on a short page without links', async () => {
  const { fetchImpl } = recording(() => ({
    data: [
      { userId: 'u1', vehicleId: 'v1', connectedAt: '2026-05-01T00:00:00Z', mode: 'simulated' },
      { id: 'c2', type: 'connection', attributes: { vehicle_id: 'v2' } },
      resource('v3', 'u3', 'not a time'),
    ],
  }));
  const platform = new SmartcarPlatform({ vehicle: 'https://vehicle.test' }, fetchImpl);
  const page = await platform.listConnectionsV3('app', {});
  expect(page).toMatchObject({ malformed: 2, items: 3, cursor: null });
  expect(page.connections).toEqual([
    { userId: 'u1', vehicleId: 'v1', connectedAt: '2026-05-01T00:00:00Z', mode: 'simulated' },
  ]);
  await expect(platform.listConnectionsV3('app', { cursor: 'abc' })).rejects.toThrow(/not a page number/);
});

it('v2 lists connections by cursor with the management token (Basic), as 0.3 did', async () => {
  const { calls, fetchImpl } = recording(() => ({ connections: [], paging: {} }));
  const platform = new SmartcarPlatform({ management: 'https://management.test' }, fetchImpl);
  const api = fleetApi(
    'v2',
    platform,
    new ApplicationTokens(async () => ({ token: 'app', expiresIn: 3600 })),
    async () => 'amt',
  );
  expect(await api.listConnections({ cursor: 'c-2' })).toMatchObject({ connections: [], cursor: null });
  expect(calls[0].url.pathname).toBe('/v2.0/management/connections');
  expect(calls[0].url.searchParams.get('cursor')).toBe('c-2');
  expect(calls[0].authorization).toBe(`Basic ${Buffer.from('default:amt').toString('base64')}`);
});

it('an unknown generation is refused by name', () => {
  expect(() =>
    fleetApi(
      'v4' as 'v3',
      new SmartcarPlatform(),
      new ApplicationTokens(async () => ({ token: '', expiresIn: 1 })),
      async () => '',
    ),
  ).toThrow(/unknown Smartcar API generation "v4"; use one of v3,v2/);
});
