/**
 * The reviews queue (`/reviews`, payments.read to see; reviews.decide to act): payments held by
 * the risk screen and waiting for a person, oldest first (they are canceled when the review window
 * ends), each with approve / reject and a reason. The decision is the payment page's
 * (POST /payments/{id}/review, lambdas/console/pages/payment-actions.ts), which comes back here.
 * Read from the index the holding transition writes (lambdas/store/open-items.ts
 * `waitingForReview`); an operator limited to a merchant sees that merchant's reviews only.
 */
import { toPayment } from '../../store/payments.ts';
import { html } from '../html.ts';
import { can, seesMerchant } from '../model.ts';
import type { ConsoleRequest, ConsoleResponse, ConsoleRoute } from '../types.ts';
import { waitingForReview } from '../../store/open-items.ts';
import { reviewForm } from './payment-actions.ts';
import { money, paymentLink, queryString, riskReasons, when } from './parts.ts';

const PAGE = 25;

async function reviewsPage(req: ConsoleRequest): Promise<ConsoleResponse> {
  const after = /^\d{13}#pay_[0-9A-Za-z]{10,40}$/.test(req.query.after ?? '') ? req.query.after : undefined;
  const op = req.operator;
  // A merchant-limited operator's page is filtered after the read: the queue is small (people decide each).
  const page = await waitingForReview({ limit: op.merchant_id ? 200 : PAGE, after });
  const rows = page.items
    .map(toPayment)
    .filter(
      (p) => p.status === 'pending_review' && p.review?.status === 'open' && seesMerchant(op, p.merchant_id),
    );
  const decides = can(op.role, 'reviews.decide');
  const table = rows.length
    ? html`<table class="reviews">
        <caption>
          Payments waiting for a review decision, oldest first
        </caption>
        <thead>
          <tr>
            <th scope="col">Held since</th>
            <th scope="col">Payment</th>
            <th scope="col">Merchant</th>
            <th scope="col">Amount</th>
            <th scope="col">Customer</th>
            <th scope="col">Why it was held</th>
            ${decides ? html`<th scope="col">Decision</th>` : ''}
          </tr>
        </thead>
        <tbody>
          ${rows.map(
            (p) =>
              html`<tr>
                <td>${when(p.updated)}</td>
                <th scope="row">${paymentLink(p.id)}</th>
                <td>${p.merchant_id}</td>
                <td class="num">${money(p.amount, p.currency)}</td>
                <td>${[p.customer?.email, p.customer?.country].filter(Boolean).join(', ') || '—'}</td>
                <td>${riskReasons(p.review!.reasons)}</td>
                ${decides ? html`<td>${reviewForm(req, p, 'reviews')}</td>` : ''}
              </tr>`,
          )}
        </tbody>
      </table>`
    : html`<p class="empty">No payment is waiting for a review.</p>`;
  const next = page.next
    ? html`<p><a rel="next" href="/console/reviews${queryString({ after: page.next })}">More reviews</a></p>`
    : '';
  return {
    kind: 'page',
    title: 'Reviews',
    nav: 'reviews',
    body: html`<h1>Reviews</h1>
      ${table} ${next}`,
  };
}

export const reviewsRoutes: ConsoleRoute[] = [
  { method: 'GET', path: '/reviews', permission: 'payments.read', handler: reviewsPage },
];
