/** POST /v1/plans, GET /v1/plans, GET /v1/plans/{id}. Plans are immutable (a new price is a new plan). */
import { pathId } from '../../shared/input.ts';
import { notFound } from '../../shared/errors.ts';
import { httpHandler } from '../../shared/http.ts';
import { getMerchantPlan, listPlans } from '../../store/plans.ts';
import { presentPlan } from '../model.ts';
import { createPlanFor } from '../service.ts';
import { parseCreatePlan, parseListQuery } from '../validation.ts';
import { idempotentPost, listBody } from './common.ts';

export const handler = httpHandler(async (req) => {
  // The path id is checked before anything else (routes without one leave it undefined).
  const id = req.pathParams.id === undefined ? undefined : pathId(req, 'plan');
  if (req.method === 'POST')
    return idempotentPost(
      req,
      'plan.create',
      false,
      async (id) => {
        const body = parseCreatePlan(req.body);
        return { status: 200, body: presentPlan(await createPlanFor(req.merchantId, id, body)) };
      },
      'plan',
    );
  if (id === undefined) {
    const q = parseListQuery(req.query, {});
    return {
      status: 200,
      body: listBody('/v1/plans', await listPlans(req.merchantId, q.limit, q.startingAfter), presentPlan),
    };
  }
  const p = await getMerchantPlan(req.merchantId, id);
  if (!p) throw notFound('plan', id);
  return { status: 200, body: presentPlan(p) };
});
