/**
 * POST /v1/subscriptions, GET /v1/subscriptions (filters customer, plan, status), GET and POST
 * /v1/subscriptions/{id} (plan change, cancel_at_period_end, metadata), POST
 * /v1/subscriptions/{id}/cancel {at_period_end?}, /pause, /resume.
 */
import { pathId } from '../../shared/input.ts';
import { config } from '../../shared/config.ts';
import { httpHandler } from '../../shared/http.ts';
import { listSubscriptions, subscriptionTimeline, updateSubscription } from '../../store/subscriptions.ts';
import { presentSubscription } from '../model.ts';
import {
  cancelSubscription,
  changePlan,
  createSubscriptionFor,
  firstChargeSettled,
  getSubscriptionOf,
  pauseSubscription,
  resumeSubscription,
} from '../service.ts';
import {
  filterChecks,
  parseCancel,
  parseCreateSubscription,
  parseEmpty,
  parseListQuery,
  parseUpdateSubscription,
} from '../validation.ts';
import { idempotentPost, listBody } from './common.ts';

export const handler = httpHandler(async (req) => {
  // The path id is checked before anything else (routes without one leave it undefined).
  const id = req.pathParams.id === undefined ? undefined : pathId(req, 'subscription');
  if (id === undefined) {
    if (req.method === 'POST')
      return idempotentPost(
        req,
        'subscription.create',
        true,
        async (newId, progress) => {
          const body = parseCreateSubscription(req.body);
          await createSubscriptionFor(req.merchantId, newId, body);
          return {
            status: 200,
            body: presentSubscription(await firstChargeSettled(newId, config.syncWaitMs(), progress.resumed)),
          };
        },
        'sub',
      );
    const q = parseListQuery(req.query, {
      customer: filterChecks.customer,
      plan: filterChecks.plan,
      status: filterChecks.subscriptionStatus,
    });
    const page = await listSubscriptions(req.merchantId, {
      limit: q.limit,
      startingAfter: q.startingAfter,
      ...q.filters,
    });
    return { status: 200, body: listBody('/v1/subscriptions', page, presentSubscription) };
  }
  if (req.method === 'GET') {
    const s = await getSubscriptionOf(req.merchantId, id);
    return { status: 200, body: { ...presentSubscription(s), timeline: await subscriptionTimeline(id) } };
  }
  const action = req.path.split('/').pop();
  if (action === 'cancel')
    return idempotentPost(req, 'subscription.cancel', false, async () => {
      const b = parseCancel(req.body);
      return {
        status: 200,
        body: presentSubscription(await cancelSubscription(req.merchantId, id, b.at_period_end ?? false)),
      };
    });
  if (action === 'pause' || action === 'resume')
    return idempotentPost(req, `subscription.${action}`, false, async () => {
      parseEmpty(req.body);
      const s =
        action === 'pause'
          ? await pauseSubscription(req.merchantId, id)
          : await resumeSubscription(req.merchantId, id);
      return { status: 200, body: presentSubscription(s) };
    });
  return idempotentPost(req, 'subscription.update', true, async (_id, progress) => {
    const b = parseUpdateSubscription(req.body);
    let s = await getSubscriptionOf(req.merchantId, id);
    if (b.cancel_at_period_end !== undefined || b.metadata !== undefined)
      s =
        (await updateSubscription(
          id,
          {
            cancel_at_period_end: b.cancel_at_period_end,
            metadata: b.metadata,
          },
          ['incomplete', 'trialing', 'active', 'past_due', 'unpaid', 'paused'],
        )) ?? s;
    if (b.plan !== undefined) s = await changePlan(req.merchantId, id, b.plan, config.syncWaitMs(), progress);
    return { status: 200, body: presentSubscription(s) };
  });
});
