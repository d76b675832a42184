/**
 * Plans (docs/billing.md "Objects"), table `main`: `PLAN#<id>`, listed per merchant on gsi1.
 * Plans are immutable: a price change is a new plan, so there is no update here, and a plan once
 * read is kept in memory (bounded): every period's billing steps read the subscription's plan.
 */
import type { Plan } from '../billing/model.ts';
import { getObject, listObjects, putObject } from './billing-objects.ts';

/** Plans read before, by id (insertion order: the oldest is dropped first). */
const read = new Map<string, Plan>();
const MAX_CACHED = 1000;

export const createPlan = (p: Plan) => putObject('plan', p);

export async function getPlan(id: string): Promise<Plan | undefined> {
  const cached = read.get(id);
  if (cached) return structuredClone(cached);
  const plan = await getObject<Plan>('plan', id);
  if (plan) {
    if (read.size >= MAX_CACHED) read.delete(read.keys().next().value!);
    read.set(id, structuredClone(plan));
  }
  return plan;
}

export const getMerchantPlan = async (merchantId: string, id: string) => {
  const plan = await getPlan(id);
  return plan?.merchant_id === merchantId ? plan : undefined;
};
export const listPlans = (merchantId: string, limit: number, startingAfter?: string) =>
  listObjects<Plan>('plan', merchantId, { limit, startingAfter });
