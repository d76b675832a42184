/**
 * What an operator does to a payment from the console: refund it (refunds.create) and decide its
 * review (reviews.decide). Both go through the same services as the API and the CLI (the refund
 * service, lambdas/refunds/service.ts; the review decision, lambdas/reviews/service.ts), under an
 * idempotency key made from the form's own token, so a form submitted twice (a double click, a
 * reload after a timeout) acts once and answers the first outcome. A support operator's refunds
 * are limited (`refundLimit`, lambdas/console/model.ts). Every action is audited once.
 */
import { randomBytes } from 'node:crypto';
import { ApiError } from '../../shared/errors.ts';
import type { Payment } from '../../domain/payment.ts';
import { requestRefund } from '../../refunds/service.ts';
import { decideReview, type ReviewDecision } from '../../reviews/service.ts';
import { idempotent, requestHash, type StoredResponse } from '../../store/idempotency.ts';
import { getPayment } from '../../store/payments.ts';
import { refundableRemaining, type RefundReason } from '../../store/refunds.ts';
import { html, type Html } from '../html.ts';
import { csrfField } from '../layout.ts';
import { can, refundLimit, type Operator } from '../model.ts';
import { ConsoleError, type ConsoleRequest, type ConsoleResponse, type ConsoleRoute } from '../types.ts';
import { majorText, money, parseMajorAmount, visiblePayment } from './parts.ts';

const TOKEN = /^[A-Za-z0-9_-]{16,64}$/;
const REASONS: RefundReason[] = ['requested_by_customer', 'duplicate', 'fraudulent'];

/** A fresh token for one form: the idempotency key of what the form does. */
export const formToken = () => randomBytes(18).toString('base64url');

function tokenOf(req: ConsoleRequest): string {
  const t = req.form.token ?? '';
  if (!TOKEN.test(t))
    throw new ConsoleError(400, 'This form is missing its token: reload the page and try again.');
  return t;
}

/** A 4xx answer of a service as the console's refusal; anything else is unexpected. */
function refusal(response: StoredResponse): ConsoleError {
  const body = response.body as { error?: { message?: string; code?: string } };
  const message = body.error?.message ?? `Refused (${response.status}).`;
  // A review decided already conflicts with the page the operator saw (the API calls it a 400).
  const conflict = response.status === 409 || body.error?.code === 'review_closed';
  const status = response.status === 404 ? 404 : conflict ? 409 : response.status === 403 ? 403 : 400;
  return new ConsoleError(status, message);
}

function asConsoleError(err: unknown): unknown {
  if (err instanceof ApiError && err.status < 500)
    return refusal({ status: err.status, body: err.toJSON() as Record<string, unknown> });
  return err;
}

export function overLimitMessage(op: Operator, amount: number, currency: string): string | undefined {
  const limit = refundLimit(op);
  if (limit === undefined || amount <= limit) return undefined;
  return limit === 0
    ? 'Your role cannot issue refunds.'
    : `A refund of ${money(amount, currency)} is over your refund limit of ${money(limit, currency)}: ask an admin to issue it.`;
}

// ---------------------------------------------------------------- refund

async function refund(req: ConsoleRequest): Promise<ConsoleResponse> {
  const op = req.operator;
  const p = await visiblePayment(op, req.params.id);
  const token = tokenOf(req);
  const amountText = (req.form.amount ?? '').trim();
  let amount: number | undefined;
  if (amountText) {
    amount = parseMajorAmount(amountText, p.currency);
    if (amount === undefined)
      throw new ConsoleError(
        400,
        `'${amountText}' is not an amount in ${p.currency.toUpperCase()} (e.g. ${majorText(100, p.currency)}).`,
      );
  }
  const reason = req.form.reason || undefined;
  if (reason !== undefined && !(REASONS as string[]).includes(reason))
    throw new ConsoleError(400, `Unknown refund reason '${reason}'.`);
  // Everything refundable when no amount is given: the limit applies to what that is now.
  const checked = amount ?? (await refundableRemaining(p));
  const over = overLimitMessage(op, checked, p.currency);
  if (over) {
    // A refused attempt is an action too: who tried to refund how much, and why it was refused.
    await req.audit({
      action: 'refund.refused',
      target: { kind: 'payment', id: p.id },
      merchant_id: p.merchant_id,
      before: { status: p.status, amount_refunded: p.amount_refunded },
      after: { status: p.status, amount_refunded: p.amount_refunded, refused_amount: checked },
      note: over,
    });
    throw new ConsoleError(403, over);
  }
  const before = { status: p.status, amount_refunded: p.amount_refunded };
  let result;
  try {
    result = await requestRefund({
      merchantId: p.merchant_id,
      idempotencyKey: `console-refund-${token}`,
      body: {
        payment: p.id,
        ...(amount !== undefined ? { amount } : {}),
        ...(reason ? { reason } : {}),
        metadata: { console_operator: op.id },
      },
      channel: 'console',
    });
  } catch (err) {
    throw asConsoleError(err);
  }
  const { response, replayed } = result;
  if (response.status >= 300) throw refusal(response);
  const r = response.body as { id: string; amount: number; status: string; failure_reason: string | null };
  if (!replayed) {
    const after = await getPayment(p.id);
    await req.audit({
      action: 'refund.create',
      target: { kind: 'payment', id: p.id },
      merchant_id: p.merchant_id,
      before,
      after: {
        status: after?.status,
        amount_refunded: after?.amount_refunded,
        refund: { id: r.id, amount: r.amount, status: r.status },
      },
      note: reason,
    });
  }
  return {
    kind: 'redirect',
    to: `/payments/${p.id}`,
    flash: `Refund ${r.id} of ${money(r.amount, p.currency)}: ${r.status}${r.failure_reason ? ` (${r.failure_reason})` : ''}.`,
  };
}

export function refundForm(req: ConsoleRequest, p: Payment, remaining: number): Html {
  const limit = refundLimit(req.operator);
  return html`<form method="post" action="/console/payments/${p.id}/refund" class="refund">
    ${csrfField(req)}
    <input type="hidden" name="token" value="${formToken()}" />
    <p>
      Refundable now:
      ${money(remaining, p.currency)}.${
        limit !== undefined ? html` Your limit per refund: ${money(limit, p.currency)}.` : ''
      }
    </p>
    <div>
      <label for="refund-amount">Amount in ${p.currency.toUpperCase()} (empty: everything refundable)</label>
      <input
        id="refund-amount"
        name="amount"
        inputmode="decimal"
        placeholder="${majorText(remaining, p.currency)}"
      />
    </div>
    <div>
      <label for="refund-reason">Reason</label>
      <select id="refund-reason" name="reason">
        ${REASONS.map((r) => html`<option value="${r}">${r.replace(/_/g, ' ')}</option>`)}
      </select>
    </div>
    <div><button type="submit">Refund</button></div>
  </form>`;
}

// ---------------------------------------------------------------- review decision

async function decide(req: ConsoleRequest): Promise<ConsoleResponse> {
  const op = req.operator;
  const p = await visiblePayment(op, req.params.id);
  const token = tokenOf(req);
  const decision = req.form.decision;
  if (decision !== 'approve' && decision !== 'reject')
    throw new ConsoleError(400, `Unknown decision '${decision ?? ''}' (approve or reject).`);
  const reason = (req.form.reason ?? '').trim();
  if (!reason) throw new ConsoleError(400, 'Give a reason for the decision.');
  if (reason.length > 500) throw new ConsoleError(400, 'The reason is too long (500 characters at most).');
  const reviewId = p.review?.id;
  if (!reviewId) throw new ConsoleError(409, `Payment ${p.id} has no review.`);
  let result;
  try {
    result = await idempotent(
      p.merchant_id,
      `console-review-${token}`,
      requestHash('POST', `/console/payments/${p.id}/review`, { decision, reason }),
      (_id, progress) =>
        decideReview(
          {
            merchantId: p.merchant_id,
            reviewId,
            decision: decision as ReviewDecision,
            reason,
            by: `console ${op.id}`,
          },
          progress,
        ),
      { operation: `review.${decision}` },
    );
  } catch (err) {
    throw asConsoleError(err);
  }
  const { response, replayed } = result;
  if (response.status >= 300) throw refusal(response);
  const after = (response.body as { payment: { status: string } }).payment;
  if (!replayed)
    await req.audit({
      action: `review.${decision}`,
      target: { kind: 'payment', id: p.id },
      merchant_id: p.merchant_id,
      before: { status: p.status, review: { id: reviewId, status: 'open' } },
      after: { status: after.status, review: { id: reviewId, decision } },
      note: reason,
    });
  const back = req.form.back === 'reviews' ? '/reviews' : `/payments/${p.id}`;
  return {
    kind: 'redirect',
    to: back,
    flash: `Review of ${p.id} ${decision === 'approve' ? 'approved' : 'rejected'}: the payment is ${after.status.replace(/_/g, ' ')}.`,
  };
}

/** Approve / reject with a reason (`back`: where to go after, the payment or the reviews queue). */
export function reviewForm(req: ConsoleRequest, p: Payment, back: 'payment' | 'reviews' = 'payment'): Html {
  if (!can(req.operator.role, 'reviews.decide')) return html``;
  const id = `review-reason-${p.id}`;
  return html`<form method="post" action="/console/payments/${p.id}/review" class="review">
    ${csrfField(req)}
    <input type="hidden" name="token" value="${formToken()}" />
    <input type="hidden" name="back" value="${back}" />
    <div>
      <label for="${id}">Reason for the decision</label>
      <input id="${id}" name="reason" required maxlength="500" />
    </div>
    <div>
      <button type="submit" name="decision" value="approve">Approve</button>
      <button type="submit" name="decision" value="reject">Reject</button>
    </div>
  </form>`;
}

export const paymentActionRoutes: ConsoleRoute[] = [
  { method: 'POST', path: '/payments/{id}/refund', permission: 'refunds.create', handler: refund },
  { method: 'POST', path: '/payments/{id}/review', permission: 'reviews.decide', handler: decide },
];
