import { parseManagementToken, TokenCache, TokenNotConfiguredError } from '../../lambda/core/token-cache';

describe('parseManagementToken', () => {
  it('takes the plain token, trimmed', () => {
    expect(parseManagementToken('  amt-123\n')).toBe('amt-123');
  });
  it('takes a JSON object with managementToken', () => {
    expect(parseManagementToken('{"managementToken":"amt-456"}')).toBe('amt-456');
  });
  it.each([
    ['the stack placeholder', '{"placeholder":"replace this whole value with the management token"}'],
    ['an empty value', ''],
    ['whitespace', '   '],
    ['undefined', undefined],
    ['JSON without the field', '{"token":"x"}'],
  ])('treats %s as not configured', (_label, value) => {
    expect(() => parseManagementToken(value)).toThrow(TokenNotConfiguredError);
  });
});

describe('TokenCache', () => {
  function setup() {
    let clock = 0;
    let version = 0;
    const load = jest.fn(async () => `token-${++version}`);
    const cache = new TokenCache(load, { ttlMs: 1000, minRefreshIntervalMs: 100, now: () => clock });
    return { cache, load, tick: (ms: number) => (clock += ms) };
  }

  it('loads once and serves from memory until the TTL passes', async () => {
    const { cache, load, tick } = setup();
    expect(await cache.get()).toBe('token-1');
    tick(999);
    expect(await cache.get()).toBe('token-1');
    expect(load).toHaveBeenCalledTimes(1);
    tick(1);
    expect(await cache.get()).toBe('token-2');
    expect(load).toHaveBeenCalledTimes(2);
  });

  it('shares one load among concurrent callers', async () => {
    const { cache, load } = setup();
    const tokens = await Promise.all([cache.get(), cache.get(), cache.get()]);
    expect(tokens).toEqual(['token-1', 'token-1', 'token-1']);
    expect(load).toHaveBeenCalledTimes(1);
  });

  it('refreshes early in a small burst, then at most once per interval, and says when the token changed', async () => {
    const { cache, load, tick } = setup();
    await cache.get();
    // A rotation right after a load is picked up at once: a burst of three early re-reads is available.
    expect(await cache.refresh()).toBe('token-2');
    expect(await cache.refresh()).toBe('token-3');
    expect(await cache.refresh()).toBe('token-4');
    expect(await cache.refresh()).toBeUndefined(); // burst spent: a flood costs no more reads
    expect(load).toHaveBeenCalledTimes(4);
    tick(99);
    expect(await cache.refresh()).toBeUndefined();
    tick(1);
    expect(await cache.refresh()).toBe('token-5'); // one more per interval
    expect(await cache.refresh()).toBeUndefined();
    expect(load).toHaveBeenCalledTimes(5);
    expect(await cache.get()).toBe('token-5');
  });

  it('answers undefined when a refresh finds the same token', async () => {
    const load = jest.fn(async () => 'same');
    let clock = 0;
    const cache = new TokenCache(load, { ttlMs: 1000, minRefreshIntervalMs: 10, now: () => clock });
    await cache.get();
    clock = 50;
    expect(await cache.refresh()).toBeUndefined();
    expect(load).toHaveBeenCalledTimes(2);
  });

  it('remembers a failed load for a short while, then tries again', async () => {
    let clock = 0;
    const load = jest.fn().mockRejectedValueOnce(new TokenNotConfiguredError()).mockResolvedValueOnce('ok');
    const cache = new TokenCache(load, { ttlMs: 1000, failureBackoffMs: 100, now: () => clock });
    await expect(cache.get()).rejects.toThrow(TokenNotConfiguredError);
    clock = 99;
    await expect(cache.get()).rejects.toThrow(TokenNotConfiguredError); // no second Secrets Manager call
    expect(load).toHaveBeenCalledTimes(1);
    clock = 100;
    expect(await cache.get()).toBe('ok');
    expect(load).toHaveBeenCalledTimes(2);
  });
});
