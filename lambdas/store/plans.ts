/**
 * Plans (docs/billing.md "Objects"), table `main`: `PLAN#<id>`, listed per merchant on gsi1.
 * Plans are immutable: a price change is a new plan, so there is no update here.
 */
import type { Plan } from '../billing/model.ts';
import { getMerchantObject, getObject, listObjects, putObject } from './billing-objects.ts';

export const createPlan = (p: Plan) => putObject('plan', p);
export const getPlan = (id: string) => getObject<Plan>('plan', id);
export const getMerchantPlan = (merchantId: string, id: string) =>
  getMerchantObject<Plan>('plan', merchantId, id);
export const listPlans = (merchantId: string, limit: number, startingAfter?: string) =>
  listObjects<Plan>('plan', merchantId, { limit, startingAfter });
