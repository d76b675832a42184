/** Request validation for webhook endpoints and events (zod; errors name the `param`). */
import { z } from 'zod';
import { invalidRequest } from '../shared/errors.ts';
import { parse } from '../payments/validation.ts';
import { endpointUrlProblem, isEventPattern } from './policy.ts';

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
        .string()
        .refine(isEventPattern, 'must be "*", "<object>.*" or an event type such as "payment.captured"'),
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
  if (q.type !== undefined && !/^[a-z][a-z_]{0,39}\.[a-z][a-z_]{0,39}$/.test(q.type))
    throw invalidRequest('parameter_invalid', `Invalid type: ${q.type}`, 'type');
  return { type: q.type, limit, startingAfter: q.starting_after };
}
