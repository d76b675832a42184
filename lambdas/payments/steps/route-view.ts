/**
 * What the payment workflow carries of the payment, so that its first steps need no read of it
 * (docs/states.md, "What the workflow carries"): POST /v1/payments starts the workflow with the
 * payment it put (`ScreenView`, in the execution input), and "Screen for risk" hands "Choose a
 * processor" the payment as its write left it (`RouteView`, `$.risk.result.payment`). Only what the
 * step reads: amounts, currency, method, the dimensions of routing rules (customer and issuer
 * country, brand, channel, metadata), the status, the processor and the version. No email, no
 * card digits.
 *
 * A carried copy may be stale (a retried step gets its input again, a cancel may land between the
 * steps): a step acts on it only through a write conditioned on what it saw (`version`,
 * `status = processing`, for the route step no processor yet) and reads the payment when that
 * write fails, or when the copy would have it do anything but that one write.
 */
import { z } from 'zod';
import type { Payment } from '../../domain/payment.ts';
import { prefixedId } from '../../shared/task-input.ts';

/** What "Screen for risk" reads of the payment (the customer's id for the velocity rule). */
export const ScreenView = z.object({
  id: prefixedId('pay'),
  status: z.string().min(1),
  version: z.number().int().nonnegative(),
  amount: z.number().int().nonnegative(),
  currency: z.string().min(3),
  merchant_id: z.string().min(1),
  customer_id: z.string().nullable(),
  customer_country: z.string().nullable(),
  execution_arn: z.string().nullable(),
});
export type ScreenView = z.infer<typeof ScreenView>;

export const screenView = (p: Payment): ScreenView => ({
  id: p.id,
  status: p.status,
  version: p.version,
  amount: p.amount,
  currency: p.currency,
  merchant_id: p.merchant_id,
  customer_id: p.customer?.id ?? null,
  customer_country: p.customer?.country ?? null,
  execution_arn: p.execution_arn,
});

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
