/**
 * GET /v1/analytics/payments?from&to&group_by — approval analytics of the merchant's payments
 * (attempts, approvals, approval rate, decline reasons, cascades recovered, volume) by processor,
 * payment method, card brand, issuer country, customer country or channel.
 */
import { httpHandler } from '../shared/http.ts';
import { parseAnalyticsQuery, paymentAnalytics } from './service.ts';

export const handler = httpHandler(async (req) => ({
  status: 200,
  body: await paymentAnalytics(req.merchantId, parseAnalyticsQuery(req.query)),
}));
