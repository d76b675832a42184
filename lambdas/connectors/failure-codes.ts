/**
 * paystep's normalized failure codes, from every connector's decline table: each code with its
 * category and whether trying again may succeed. Routing validates cascade allow-lists against it
 * (a code no connector produces would never cascade, which is a configuration mistake).
 * The tables agree where they share a code (test/unit/adyen-connector-declines checks it).
 */
import type { FailureCategory } from './types.ts';
import { ADYEN_FAILURES } from './adyen/declines.ts';
import { STRIPE_DECLINES } from './stripe/declines.ts';

export interface FailureCodeInfo {
  category: FailureCategory;
  retryable: boolean;
}

let codes: Map<string, FailureCodeInfo> | undefined;

export function failureCodes(): ReadonlyMap<string, FailureCodeInfo> {
  if (codes) return codes;
  codes = new Map();
  for (const [key, row] of Object.entries(STRIPE_DECLINES))
    codes.set(row.code ?? key, { category: row.category, retryable: row.retryable });
  for (const [code, row] of Object.entries(ADYEN_FAILURES))
    if (!codes.has(code)) codes.set(code, { category: row.category, retryable: row.retryable });
  return codes;
}
