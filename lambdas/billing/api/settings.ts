/**
 * GET /v1/billing/dunning_policy — the merchant's dunning policy in force (its own fields over
 * paystep's defaults); POST /v1/billing/dunning_policy — changes the fields given (`null`: back to
 * the default). docs/billing.md "Dunning policy".
 */
import { httpHandler } from '../../shared/http.ts';
import { showDunningPolicy, updateDunningPolicy } from '../dunning-policy.ts';

export const handler = httpHandler(async (req) => {
  if (req.method === 'POST')
    return { status: 200, body: await updateDunningPolicy(req.merchantId, req.body) };
  return { status: 200, body: await showDunningPolicy(req.merchantId) };
});
