/**
 * GET /v1/analytics/recovery — what dunning won back for the merchant (lambdas/billing/recovery.ts):
 * failed, recovered, lost and still-in-dunning invoices per currency, recovered revenue by the
 * attempt that paid, the first decline code and the days from the first failure. Optional
 * `created_gte` / `created_lt` (epoch seconds) bound the invoices by creation.
 */
import { httpHandler } from '../../shared/http.ts';
import { invalidRequest } from '../../shared/errors.ts';
import { merchantInvoices } from '../../store/invoices.ts';
import { recoveryReport } from '../recovery.ts';

/** At most this many invoices are read per request (the answer says when it stopped there). */
const MAX_INVOICES = 20_000;

export const handler = httpHandler(async (req) => {
  for (const k of Object.keys(req.query))
    if (k !== 'created_gte' && k !== 'created_lt')
      throw invalidRequest('parameter_unknown', `Received unknown parameter: ${k}`, k);
  const bound = (name: string) => {
    const v = req.query[name];
    if (v === undefined) return undefined;
    if (!/^\d{1,12}$/.test(v))
      throw invalidRequest('parameter_invalid', `Invalid ${name}: must be epoch seconds`, name);
    return Number(v);
  };
  const gte = bound('created_gte');
  const lt = bound('created_lt');
  const { invoices, truncated } = await merchantInvoices(req.merchantId, MAX_INVOICES);
  const inRange = invoices.filter(
    (i) => (gte === undefined || i.created >= gte) && (lt === undefined || i.created < lt),
  );
  return {
    status: 200,
    body: { object: 'list', url: '/v1/analytics/recovery', data: recoveryReport(inRange), truncated },
  };
});
