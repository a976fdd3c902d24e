import { challengeResponse, headerValue, hmacHex, isValidSignature } from '../../lambda/core/signature';
import { fixture, TEST_TOKEN } from '../support/fixtures';

describe('reference test vectors', () => {
  it('answers the challenge vectors', () => {
    expect(challengeResponse('amt', 'challenge')).toBe(
      '9baf5a7464bd86740ad5a06e439dcf535a075022ed2c92d74efacf646d79328e',
    );
    expect(challengeResponse(TEST_TOKEN, '3a5c8f72-e6d9-4b1a-9f2e-8c7d6a5b4e3f')).toBe(
      '349d5faf8fa4f2d540b13549b98559b6fa4fd9592b8340988d0bd441eeaca352',
    );
  });

  it('signs the body vectors over the raw bytes', () => {
    expect(hmacHex('amt', '{"pizza":"pasta"}')).toBe(
      '4c05a8da471f05156ad717baa4017acd13a3a809850b9ca7d3301dcaaa854f70',
    );
    const verifyBody = fixture('verify-current');
    const expected = '22bb60abff345f2ad642efd59fa3b065d7e43704483cef2ae618d15317914e8d';
    expect(hmacHex(TEST_TOKEN, verifyBody)).toBe(expected);
    expect(isValidSignature(TEST_TOKEN, verifyBody, expected)).toBe(true);
  });
});

describe('isValidSignature', () => {
  const body = Buffer.from('{"pizza":"pasta"}');
  const good = '4c05a8da471f05156ad717baa4017acd13a3a809850b9ca7d3301dcaaa854f70';

  it('accepts the right signature, in either hex case and with stray whitespace', () => {
    expect(isValidSignature('amt', body, good)).toBe(true);
    expect(isValidSignature('amt', body, good.toUpperCase())).toBe(true);
    expect(isValidSignature('amt', body, ` ${good}\n`)).toBe(true);
  });

  it.each([
    ['missing', undefined],
    ['null', null],
    ['empty', ''],
    ['one character short', good.slice(1)],
    ['one character long', `${good}0`],
    ['not hex', `${good.slice(0, 63)}z`],
    ['another digest', good.replace(/^4/, '5')],
    ['a signature prefix scheme', `sha256=${good}`],
  ])('rejects a %s signature without throwing', (_label, sig) => {
    expect(isValidSignature('amt', body, sig as string | undefined)).toBe(false);
  });

  it('rejects the right signature under another token', () => {
    expect(isValidSignature('another-token', body, good)).toBe(false);
  });

  it('does not accept the signature of re-serialized JSON (bytes matter, not meaning)', () => {
    const pretty = Buffer.from(JSON.stringify(JSON.parse(body.toString()), null, 2));
    expect(isValidSignature('amt', pretty, good)).toBe(false);
  });
});

describe('headerValue', () => {
  it('finds a header whatever the case of its name', () => {
    expect(headerValue({ 'sc-signature': 'a' }, 'SC-Signature')).toBe('a');
    expect(headerValue({ 'SC-Signature': 'b' }, 'sc-signature')).toBe('b');
    expect(headerValue({ 'Sc-SiGnAtUrE': 'c' }, 'SC-SIGNATURE')).toBe('c');
  });

  it('answers undefined for absent headers and header maps', () => {
    expect(headerValue({ other: 'x' }, 'sc-signature')).toBeUndefined();
    expect(headerValue(undefined, 'sc-signature')).toBeUndefined();
    expect(headerValue(null, 'sc-signature')).toBeUndefined();
  });
});
