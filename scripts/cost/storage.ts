/**
 * What the lake holds after twelve months of steady volume, with the lifecycle rules the template
 * configures: each prefix's expiration (S3 counts from an object's creation), read from the buckets'
 * lifecycle configurations. A prefix without an expiring rule keeps everything. Storage is billed per
 * GB-month, so month 12's bill is what the lake holds then; the twelve months' total is printed beside it.
 */

import type { TemplateJson } from './fixed';
import { PRICES } from './prices';

interface Rule {
  Status?: string;
  Prefix?: string;
  ExpirationInDays?: number;
}

/** Days after which objects under `prefix` of the lake bucket expire; undefined: kept. */
export function expiryDays(template: TemplateJson, prefix: string): number | undefined {
  const days: number[] = [];
  for (const r of Object.values(template.Resources)) {
    if (r.Type !== 'AWS::S3::Bucket') continue;
    const rules = ((r.Properties?.LifecycleConfiguration as { Rules?: Rule[] })?.Rules ?? []).filter(
      (rule) => rule.Status === 'Enabled' && rule.ExpirationInDays !== undefined,
    );
    for (const rule of rules)
      if (rule.Prefix !== undefined && prefix.startsWith(rule.Prefix)) days.push(rule.ExpirationInDays as number);
  }
  return days.length ? Math.min(...days) : undefined;
}

export interface StoredYear {
  /** GB held at the end of month 12. */
  readonly gbMonth12: number;
  readonly dollarsMonth12: number;
  /** Dollars over the twelve months. */
  readonly dollarsYear: number;
}

/** `bytesPerMonth` written each month for 12 months; kept `keepDays` (undefined: for ever). */
export function storedOverAYear(bytesPerMonth: number, keepDays: number | undefined): StoredYear {
  const keepMonths = keepDays === undefined ? Number.POSITIVE_INFINITY : keepDays / 30.4375;
  let year = 0;
  let held = 0;
  for (let month = 1; month <= 12; month++) {
    // Average held during the month: what earlier months left, plus half of this month's writes.
    held = Math.min(month, keepMonths) * bytesPerMonth;
    const average = Math.max(0, Math.min(month - 0.5, keepMonths)) * bytesPerMonth;
    year += (average / 1e9) * PRICES.s3.storageGbMonth;
  }
  return { gbMonth12: held / 1e9, dollarsMonth12: (held / 1e9) * PRICES.s3.storageGbMonth, dollarsYear: year };
}
