/** Stripe's error bodies, the simulator's error type, and `Stripe-Should-Retry`. */
import type { StripeObject } from './types.ts';
import { DOCS } from './money.ts';

export interface StripeErrorBody {
  type: 'api_error' | 'card_error' | 'idempotency_error' | 'invalid_request_error';
  message: string;
  code?: string;
  decline_code?: string;
  param?: string;
  doc_url?: string;
  advice_code?: string;
  network_decline_code?: string;
  charge?: string;
  payment_intent?: StripeObject;
  payment_method?: StripeObject;
  request_log_url?: string;
}

/** An error response. `stored`: whether the idempotency layer keeps it (the endpoint had started). */
export class SimError extends Error {
  readonly status: number;
  readonly body: StripeErrorBody;
  readonly stored: boolean;
  constructor(status: number, body: StripeErrorBody, stored = false) {
    super(body.message);
    this.status = status;
    this.body = body;
    this.stored = stored;
  }
}

export const docUrl = (code: string) => `${DOCS}/${code.replace(/_/g, '-')}`;

/** A request refused on its parameters: never stored by the idempotency layer. */
export function invalid(message: string, param?: string, code?: string): SimError {
  return new SimError(400, {
    type: 'invalid_request_error',
    message,
    ...(code ? { code, doc_url: docUrl(code) } : {}),
    ...(param ? { param } : {}),
  });
}

/** A refusal decided by the endpoint (wrong state, over-refund): stored like any executed result. */
export function refused(message: string, param?: string, code?: string): SimError {
  const e = invalid(message, param, code);
  return new SimError(e.status, e.body, true);
}

export const noSuch = (what: string, id: string, param: string, status = 400) =>
  new SimError(status, {
    type: 'invalid_request_error',
    code: 'resource_missing',
    doc_url: docUrl('resource_missing'),
    message: `No such ${what}: '${id}'`,
    param,
  });

/**
 * `Stripe-Should-Retry`, which the SDK obeys before its own rules: `false` on errors a retry cannot
 * change (4xx, and a 5xx of a request that executed: its result is stored and would be replayed);
 * `true` on a 409 (the key's first request is still running) and on a 5xx of a request that never
 * ran. A 429 gets none (the SDK then does not retry it). Successful answers get none.
 */
export function shouldRetry(status: number, executed: boolean): Record<string, string> {
  if (status < 400 || status === 429) return {};
  const retry = status === 409 || (status >= 500 && !executed);
  return { 'Stripe-Should-Retry': retry ? 'true' : 'false' };
}
