/** Request validation for the disputes API (zod); problems are 400s naming the `param`. */
import { z } from 'zod';
import { invalidRequest } from '../shared/errors.ts';
import { parse } from '../payments/validation.ts';
import { isIdOf } from '../shared/input.ts';
import {
  EVIDENCE_FIELDS,
  unsupportedFields,
  type Evidence,
  type EvidenceField,
  type EvidenceSupport,
} from '../connectors/disputes.ts';

/** The most any connector accepts; each connector's own limits are checked by `checkEvidenceFor`. */
const FIELD_MAX = 20_000;

const evidenceShape = Object.fromEntries(
  EVIDENCE_FIELDS.map((f) => [
    f,
    z
      .string()
      .min(1, 'must not be empty')
      .max(FIELD_MAX, `must be at most ${FIELD_MAX} characters`)
      .optional(),
  ]),
) as Record<EvidenceField, z.ZodOptional<z.ZodString>>;

/** The body of POST /v1/disputes/{id}/evidence: the neutral evidence schema (docs/disputes.md). */
export const EvidenceBody = z.strictObject({
  evidence: z.strictObject(evidenceShape),
  submit: z.boolean('submit must be true or false').default(true),
});

export interface EvidenceRequest {
  evidence: Evidence;
  submit: boolean;
}

export function parseEvidence(body: unknown): EvidenceRequest {
  if (body === undefined)
    throw invalidRequest('parameter_missing', 'Missing required param: evidence.', 'evidence');
  const data = parse(EvidenceBody, body);
  const evidence: Evidence = {};
  for (const [k, v] of Object.entries(data.evidence)) if (v !== undefined) evidence[k as EvidenceField] = v;
  if (Object.keys(evidence).length === 0)
    throw invalidRequest('parameter_missing', 'Send at least one evidence field.', 'evidence');
  return { evidence, submit: data.submit };
}

/** Whether the dispute's processor takes this evidence: its fields, its limits, staging. */
export function checkEvidenceFor(processor: string, support: EvidenceSupport, req: EvidenceRequest): void {
  const unsupported = unsupportedFields(support, req.evidence);
  if (unsupported.length)
    throw invalidRequest(
      'parameter_invalid',
      `Invalid evidence.${unsupported[0]}: this dispute is at ${processor}, which does not take ${unsupported.join(', ')}` +
        (support.fileFields.length === 0
          ? ' (file ids belong to another processor); describe it in a text field such as uncategorized_text'
          : ''),
      `evidence.${unsupported[0]}`,
    );
  for (const [k, v] of Object.entries(req.evidence))
    if (v!.length > support.maxFieldLength)
      throw invalidRequest(
        'parameter_invalid',
        `Invalid evidence.${k}: must be at most ${support.maxFieldLength} characters`,
        `evidence.${k}`,
      );
  const total = Object.values(req.evidence).reduce((n, v) => n + v!.length, 0);
  if (total > support.maxTotalLength)
    throw invalidRequest(
      'parameter_invalid',
      `Invalid evidence: at most ${support.maxTotalLength} characters in all fields together`,
      'evidence',
    );
  if (!req.submit && !support.staging)
    throw invalidRequest(
      'parameter_invalid',
      `Invalid submit: ${processor} cannot stage evidence; send it with submit true`,
      'submit',
    );
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
