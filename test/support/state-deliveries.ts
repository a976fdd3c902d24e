/**
 * A VEHICLE_STATE delivery carrying 19 signals, as a fleet webhook subscribed to an EV's usual signals
 * sends (each delivery carries every subscribed signal, not only the ones that triggered it): what the
 * state table's cost per delivery is measured with (scripts/bench-fleet.ts) and its size tests use.
 */

/** The 19 signals: code, name, group, and a body for time `at` (values move with time, as a car's do). */
export const NINETEEN_SIGNALS: readonly [string, string, string, (at: number, v: number) => unknown][] = [
  [
    'tractionbattery-stateofcharge',
    'StateOfCharge',
    'TractionBattery',
    (_, v) => ({ unit: 'percent', value: v % 100 }),
  ],
  ['tractionbattery-range', 'Range', 'TractionBattery', (_, v) => ({ unit: 'km', value: 120 + (v % 300) + 0.4 })],
  ['tractionbattery-nominalcapacity', 'NominalCapacity', 'TractionBattery', () => ({ unit: 'kWh', capacity: 75 })],
  ['odometer-traveleddistance', 'TraveledDistance', 'Odometer', (at) => ({ unit: 'km', value: Math.floor(at / 7e6) })],
  [
    'location-preciselocation',
    'PreciseLocation',
    'Location',
    (at, v) => ({
      latitude: 37.4292 + (v % 97) / 1e4,
      longitude: -122.1381 - (at % 89) / 1e4,
      heading: v % 360,
      direction: 'NE',
      locationType: 'GPS',
    }),
  ],
  ['location-isathome', 'IsAtHome', 'Location', (_, v) => ({ value: v % 2 === 0 })],
  ['charge-ischarging', 'IsCharging', 'Charge', (_, v) => ({ value: v % 3 === 0 })],
  ['charge-ischargingcableconnected', 'IsChargingCableConnected', 'Charge', (_, v) => ({ value: v % 3 !== 1 })],
  [
    'charge-chargelimits',
    'ChargeLimits',
    'Charge',
    () => ({
      values: [{ type: 'global', condition: null, limit: 80 }],
      activeLimit: 80,
    }),
  ],
  ['charge-timetocomplete', 'TimeToComplete', 'Charge', (_, v) => ({ unit: 'minutes', value: v % 240 })],
  ['charge-amperage', 'Amperage', 'Charge', (_, v) => ({ unit: 'A', value: v % 48 })],
  ['charge-voltage', 'Voltage', 'Charge', (_, v) => ({ unit: 'V', value: 230 + (v % 11) })],
  ['charge-wattage', 'Wattage', 'Charge', (_, v) => ({ unit: 'kW', value: (v % 110) / 10 })],
  [
    'charge-detailedchargingstatus',
    'DetailedChargingStatus',
    'Charge',
    (_, v) => ({
      value: ['CHARGING', 'NOT_CHARGING', 'FULLY_CHARGED'][v % 3],
    }),
  ],
  ['closure-islocked', 'IsLocked', 'Closure', (_, v) => ({ value: v % 5 !== 0 })],
  [
    'closure-doors',
    'Doors',
    'Closure',
    (_, v) => ({
      values: ['frontLeft', 'frontRight', 'backLeft', 'backRight'].map((p, i) => ({
        position: p,
        isOpen: (v + i) % 7 === 0,
      })),
    }),
  ],
  [
    'wheel-tires',
    'Tires',
    'Wheel',
    (_, v) => ({
      unit: 'kPa',
      values: ['frontLeft', 'frontRight', 'backLeft', 'backRight'].map((p, i) => ({
        position: p,
        pressure: 240 + ((v + i) % 9),
      })),
    }),
  ],
  ['vehicleidentification-nickname', 'Nickname', 'VehicleIdentification', () => ({ value: 'Family car' })],
  ['connectivitystatus-isonline', 'IsOnline', 'ConnectivityStatus', (_, v) => ({ value: v % 11 !== 0 })],
];

/** The delivery's JSON body: Smartcar's current VEHICLE_STATE envelope with the 19 signals. */
export function nineteenSignalState(
  eventId: string,
  vehicleId: string,
  at: number,
  v = Math.floor(at / 60_000),
): string {
  const signals = NINETEEN_SIGNALS.map(([code, name, group, body]) => ({
    code,
    name,
    group,
    body: body(at, v),
    meta: { oemUpdatedAt: at - 2000, fetchedAt: at - 500 },
  }));
  return JSON.stringify({
    eventId,
    eventType: 'VEHICLE_STATE',
    vehicleId,
    data: {
      user: { id: '93b3ea96-ca37-43a9-9073-f4334719aaaa' },
      vehicle: { id: vehicleId, make: 'TESLA', model: 'Model 3', year: 2020 },
      triggers: [{ code: 'tractionbattery-stateofcharge', name: 'StateOfCharge', group: 'TractionBattery' }],
      signals,
    },
    meta: {
      version: '4.0',
      deliveryId: `d-${eventId}`,
      deliveredAt: at,
      webhookId: 'abde94ff-d57d-43b9-8d09-6020db2d977a',
      webhookName: 'Fleet telemetry',
      signalCount: signals.length,
      mode: 'LIVE',
    },
  });
}
