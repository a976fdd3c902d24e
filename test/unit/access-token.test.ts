import { accessTokenResolver } from '../../lambda/core/access-token';

const EXECUTION = { kind: 'executionInput', executionArn: 'arn:aws:states:us-east-1:1:execution:sm:a' } as const;
const SECRET = {
  kind: 'secret',
  secretArn: 'arn:aws:secretsmanager:us-east-1:1:secret:smartcar/access-tokens/u-1',
} as const;

function readers(values: { input?: unknown; secret?: string }) {
  const calls = { input: 0, secret: 0 };
  return {
    calls,
    readers: {
      executionInput: async () => {
        calls.input++;
        return values.input;
      },
      secretString: async () => {
        calls.secret++;
        return values.secret;
      },
    },
  };
}

it('reads each token once per TTL, per execution or secret', async () => {
  let now = 0;
  const { calls, readers: r } = readers({
    input: { accessToken: 'from-input' },
    secret: '{"accessToken":"from-secret"}',
  });
  const resolve = accessTokenResolver(r, { ttlMs: 1000, now: () => now });
  for (let i = 0; i < 5; i++) {
    expect(await resolve(EXECUTION)).toBe('from-input');
    expect(await resolve(SECRET)).toBe('from-secret');
  }
  expect(calls).toEqual({ input: 1, secret: 1 });
  now = 1500;
  await resolve(EXECUTION);
  expect(calls.input).toBe(2);
});

it('says what is missing, and reads again after a failure', async () => {
  const values: { input?: unknown } = { input: { action: 'subscribe' } };
  const { calls, readers: r } = readers(values);
  const resolve = accessTokenResolver(r);
  await expect(resolve(EXECUTION)).rejects.toThrow('the execution input has no accessToken');
  values.input = { accessToken: 'now-there' };
  await expect(resolve(EXECUTION)).resolves.toBe('now-there');
  expect(calls.input).toBe(2);
});

it('keeps at most maxEntries tokens', async () => {
  const { calls, readers: r } = readers({ input: { accessToken: 't' } });
  const resolve = accessTokenResolver(r, { maxEntries: 2 });
  const ref = (n: number) => ({ kind: 'executionInput', executionArn: `arn:${n}` }) as const;
  await resolve(ref(1));
  await resolve(ref(2));
  await resolve(ref(3)); // evicts 1
  await resolve(ref(2));
  await resolve(ref(1));
  expect(calls.input).toBe(4);
});
