/** Request validation for webhook endpoints and events (zod; errors name the `param`). */
import { z } from 'zod';
import { DISPUTE_STATUSES } from '../disputes/model.ts';
import { PAYMENT_STATUSES } from '../domain/payment.ts';
import { invalidRequest } from '../shared/errors.ts';
import { isIdOf } from '../shared/input.ts';
import { parse } from '../payments/validation.ts';
import type { RefundStatus } from '../store/refunds.ts';
import { BILLING_EVENT_PREFIXES, BILLING_EVENT_TYPES } from './billing-derive.ts';
import { SOURCE_KINDS } from './derive.ts';
import { INCIDENT_EVENT_PREFIX, INCIDENT_EVENT_TYPES } from './incidents.ts';
import { endpointUrlProblem } from './policy.ts';

/** Every refund status, checked exhaustive by the compiler. */
const REFUND_STATUSES = Object.keys({
  pending: true,
  succeeded: true,
  failed: true,
  canceled: true,
} satisfies Record<RefundStatus, true>);

const STATUSES: Record<(typeof SOURCE_KINDS)[number], readonly string[]> = {
  payment: PAYMENT_STATUSES,
  refund: REFUND_STATUSES,
  dispute: DISPUTE_STATUSES,
};

/**
 * Every event type there is (lambdas/events/derive.ts): `<kind>.created` and `<kind>.<status>`
 * for each status of payments, refunds and disputes; billing's; processor incidents'.
 */
export const EVENT_TYPES: readonly string[] = SOURCE_KINDS.flatMap((kind) => [
  `${kind}.created`,
  ...STATUSES[kind].map((s) => `${kind}.${s}`),
])
  .concat(BILLING_EVENT_TYPES, INCIDENT_EVENT_TYPES)
  .filter((t, i, all) => all.indexOf(t) === i);

const KNOWN_EVENT_TYPES = new Set(EVENT_TYPES);

/** `*`, `<kind>.*` for a kind that has events, or a known event type. */
export const isKnownEventPattern = (s: string) =>
  s === '*' ||
  KNOWN_EVENT_TYPES.has(s) ||
  (s.endsWith('.*') &&
    ([...SOURCE_KINDS, ...BILLING_EVENT_PREFIXES, INCIDENT_EVENT_PREFIX] as readonly string[]).includes(
      s.slice(0, -2),
    ));

export const CreateEndpointBody = z.strictObject({
  url: z
    .string('url must be a string')
    .min(1, 'must not be empty')
    .superRefine((url, ctx) => {
      const problem = endpointUrlProblem(url);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
  enabled_events: z
    .array(
      z
        .string('enabled_events must be a list of event types')
        .refine(
          isKnownEventPattern,
          'must be "*", "payment.*", "refund.*", "dispute.*", "processor.*" or a known event type such as "payment.captured" (docs/merchant-events.md)',
        ),
      'enabled_events must be a list of event types',
    )
    .min(1, 'enabled_events must name at least one event type (or "*")')
    .max(100, 'enabled_events can list at most 100 event types'),
  description: z.string().max(1000, 'description must be at most 1000 characters').optional(),
});

export type CreateEndpoint = z.infer<typeof CreateEndpointBody>;

export function parseCreateEndpoint(body: unknown): CreateEndpoint {
  if (body === undefined) throw invalidRequest('parameter_missing', 'Missing required param: url.', 'url');
  const data = parse(CreateEndpointBody, body);
  return { ...data, enabled_events: [...new Set(data.enabled_events)] };
}

export const RedeliverBody = z.strictObject({ endpoint: z.string().min(1).max(64).optional() }).optional();

export function parseEventListQuery(q: Record<string, string>) {
  const known = ['type', 'limit', 'starting_after'];
  for (const k of Object.keys(q))
    if (!known.includes(k)) throw invalidRequest('parameter_unknown', `Received unknown parameter: ${k}`, k);
  let limit = 10;
  if (q.limit !== undefined) {
    if (!/^\d+$/.test(q.limit) || Number(q.limit) < 1 || Number(q.limit) > 100)
      throw invalidRequest(
        'parameter_invalid',
        'Invalid limit: must be an integer between 1 and 100',
        'limit',
      );
    limit = Number(q.limit);
  }
  if (q.type !== undefined && !KNOWN_EVENT_TYPES.has(q.type))
    throw invalidRequest('parameter_invalid', 'Invalid type: not a known event type', 'type');
  if (q.starting_after !== undefined && !isIdOf('event', q.starting_after))
    throw invalidRequest(
      'parameter_invalid',
      'Invalid starting_after: must be an event id (evt_…)',
      'starting_after',
    );
  return { type: q.type, limit, startingAfter: q.starting_after };
}
