/** GET /v1/disputes/{id} — one dispute; another merchant's dispute is a 404. */
import { notFound } from '../shared/errors.ts';
import { httpHandler } from '../shared/http.ts';
import { pathId } from '../shared/input.ts';
import { getMerchantDispute } from '../store/disputes.ts';
import { presentDispute } from './present.ts';

export const handler = httpHandler(async (req) => {
  const id = pathId(req, 'dispute');
  const d = await getMerchantDispute(req.merchantId, id);
  if (!d) throw notFound('dispute', id);
  return { status: 200, body: presentDispute(d) };
});
