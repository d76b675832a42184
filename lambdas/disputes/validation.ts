/** Request validation for the disputes API (zod); problems are 400s naming the `param`. */
import { z } from 'zod';
import { invalidRequest } from '../shared/errors.ts';
import { parse } from '../payments/validation.ts';
import { isIdOf } from '../shared/input.ts';
import { STRIPE_EVIDENCE_FIELDS } from '../connectors/stripe/disputes.ts';

/** Stripe's limits: 20,000 characters a field, 150,000 in all. */
const FIELD_MAX = 20_000;
const TOTAL_MAX = 150_000;

const evidenceShape = Object.fromEntries(
  STRIPE_EVIDENCE_FIELDS.map((f) => [
    f,
    z
      .string()
      .min(1, 'must not be empty')
      .max(FIELD_MAX, `must be at most ${FIELD_MAX} characters`)
      .optional(),
  ]),
) as Record<(typeof STRIPE_EVIDENCE_FIELDS)[number], z.ZodOptional<z.ZodString>>;

export const EvidenceBody = z.strictObject({
  evidence: z.strictObject(evidenceShape),
  submit: z.boolean('submit must be true or false').default(true),
});

export type Evidence = z.infer<typeof EvidenceBody>;

export function parseEvidence(body: unknown): Evidence {
  if (body === undefined)
    throw invalidRequest('parameter_missing', 'Missing required param: evidence.', 'evidence');
  const data = parse(EvidenceBody, body);
  const fields = Object.entries(data.evidence).filter(([, v]) => v !== undefined);
  if (fields.length === 0)
    throw invalidRequest('parameter_missing', 'Send at least one evidence field.', 'evidence');
  const total = fields.reduce((n, [, v]) => n + (v as string).length, 0);
  if (total > TOTAL_MAX)
    throw invalidRequest(
      'parameter_invalid',
      `Invalid evidence: at most ${TOTAL_MAX} characters in all fields together`,
      'evidence',
    );
  return data;
}

export function parseListQuery(q: Record<string, string>) {
  for (const k of Object.keys(q))
    if (!['payment', 'limit', 'starting_after'].includes(k))
      throw invalidRequest('parameter_unknown', `Received unknown parameter: ${k}`, k);
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
  if (q.payment !== undefined && !isIdOf('payment', q.payment))
    throw invalidRequest('parameter_invalid', 'Invalid payment: must be a payment id (pay_…)', 'payment');
  if (q.starting_after !== undefined && !isIdOf('dispute', q.starting_after))
    throw invalidRequest(
      'parameter_invalid',
      'Invalid starting_after: must be a dispute id (dp_…)',
      'starting_after',
    );
  return { payment: q.payment, limit, startingAfter: q.starting_after };
}
