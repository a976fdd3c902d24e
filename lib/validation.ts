/**
 * Synth-time checks of construct props and CDK context: a bad value fails `cdk synth` with one line that
 * names the setting, the value and the fix, instead of being baked into a Lambda environment or a
 * resource and failing at deploy time or, worse, at run time. Values that are unresolved tokens (known
 * only at deploy time) are skipped: they cannot be checked here.
 */
import { Token } from 'aws-cdk-lib';
import { CALLBACK_PATH_PATTERN, SMARTCAR_ID_PATTERN } from '../lambda/contract';

/** A setting with a value that cannot work; `bin/app.ts` prints its message alone and exits 1. */
export class ConfigurationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigurationError';
  }
}

/** Throws a ConfigurationError naming `setting` unless `value` is absent, a token, or matches `pattern`. */
export function checkPattern(setting: string, value: string | undefined, pattern: RegExp, expected: string): void {
  if (value === undefined || Token.isUnresolved(value)) return;
  if (!pattern.test(value))
    throw new ConfigurationError(`${setting} ${JSON.stringify(value)} is invalid: ${expected}.`);
}

/** Throws unless `value` is absent, a token, or a whole number in [min, max]. */
export function checkInteger(setting: string, value: number | undefined, min: number, max: number, why = ''): void {
  if (value === undefined || Token.isUnresolved(value)) return;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigurationError(
      `${setting} is ${value}; use a whole number from ${min} to ${max}${why ? ` (${why})` : ''}.`,
    );
  }
}

/** A callback path (`callbackPath`, `errorCallbackPath`): one route key, the same on both front doors. */
export function checkCallbackPath(setting: string, value: string | undefined): void {
  if (value === undefined || Token.isUnresolved(value)) return;
  if (!CALLBACK_PATH_PATTERN.test(value) || value.includes('{'))
    throw new ConfigurationError(
      `${setting} ${JSON.stringify(value)} must start with "/" and use only URL path characters, e.g. "/webhooks".`,
    );
}

export const checkWebhookId = (setting: string, value: string | undefined) =>
  checkPattern(
    setting,
    value,
    SMARTCAR_ID_PATTERN,
    'a Smartcar webhook id is letters, digits, _ and - (Dashboard → Webhooks)',
  );

/** Secrets Manager names: 1–512 of letters, digits and /_+=.@- */
export const checkSecretName = (setting: string, value: string | undefined) =>
  checkPattern(setting, value, /^[A-Za-z0-9/_+=.@-]{1,512}$/, 'a secret name is 1 to 512 letters, digits and /_+=.@-');

/** S3 bucket naming rules (general purpose buckets). */
export function checkBucketName(setting: string, value: string | undefined): void {
  const rule =
    'a bucket name is 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit';
  checkPattern(setting, value, /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, rule);
  if (
    value !== undefined &&
    !Token.isUnresolved(value) &&
    (/\.\.|\.-|-\./.test(value) || /^\d+\.\d+\.\d+\.\d+$/.test(value))
  ) {
    throw new ConfigurationError(
      `${setting} ${JSON.stringify(value)} is invalid: ${rule}, with no ".." and not an IP address.`,
    );
  }
}

/** CloudFormation stack names. */
export const checkStackName = (setting: string, value: string | undefined) =>
  checkPattern(
    setting,
    value,
    /^[A-Za-z][A-Za-z0-9-]{0,127}$/,
    'a stack name starts with a letter and has up to 128 letters, digits and hyphens',
  );

/** An https URL with nothing after the host (http only for loopback, as tests and local fakes use). */
export function checkApiOrigin(setting: string, value: string | undefined): void {
  if (value === undefined || Token.isUnresolved(value)) return;
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  const loopback = url !== undefined && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  const ok =
    url !== undefined &&
    (url.protocol === 'https:' || (url.protocol === 'http:' && loopback)) &&
    (url.pathname === '/' || url.pathname === '') &&
    url.search === '' &&
    url.hash === '' &&
    url.username === '' &&
    url.password === '';
  if (!ok)
    throw new ConfigurationError(
      `${setting} ${JSON.stringify(value)} is invalid: use an https origin such as "https://api.smartcar.com".`,
    );
}

export const checkEmail = (setting: string, value: string | undefined) =>
  checkPattern(setting, value, /^[^\s@]+@[^\s@]+\.[^\s@]+$/, 'an email address such as "ops@example.com"');
