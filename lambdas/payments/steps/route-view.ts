/**
 * The payment as "Choose a processor" needs it, carried from "Screen for risk" in the workflow
 * state (`$.risk.result.payment`) so that the route step needs no read of the payment (docs/states.md,
 * "What the workflow carries"). Only what routing reads: amounts, currency, method, the
 * dimensions of routing rules (customer and issuer country, brand, channel, metadata), the status,
 * the processor and the version. No email, no card digits.
 *
 * A carried copy may be stale (a retried step gets its input again, a cancel may land between the
 * steps): the route step acts on it only through a write conditioned on what it read (`version`,
 * `status = processing`, no processor yet) and reads the payment when that write fails.
 */
import { z } from 'zod';
import type { Payment } from '../../domain/payment.ts';
import { prefixedId } from '../../shared/task-input.ts';

export const RouteView = z.object({
  id: prefixedId('pay'),
  merchant_id: z.string().min(1),
  status: z.string().min(1),
  version: z.number().int().nonnegative(),
  processor: z.string().min(1).nullable(),
  amount: z.number().int().nonnegative(),
  currency: z.string().min(3),
  capture_method: z.enum(['automatic', 'manual']),
  payment_method: z.string().min(1),
  customer_country: z.string().nullable(),
  card_brand: z.string().nullable(),
  card_country: z.string().nullable(),
  channel: z.string().nullable(),
  metadata: z.record(z.string(), z.string()),
});
export type RouteView = z.infer<typeof RouteView>;

export const routeView = (p: Payment): RouteView => ({
  id: p.id,
  merchant_id: p.merchant_id,
  status: p.status,
  version: p.version,
  processor: p.processor,
  amount: p.amount,
  currency: p.currency,
  capture_method: p.capture_method,
  payment_method: p.payment_method,
  customer_country: p.customer?.country ?? null,
  card_brand: p.card?.brand ?? null,
  card_country: p.card?.country ?? null,
  channel: p.channel,
  metadata: p.metadata ?? {},
});
