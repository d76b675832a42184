/**
 * A merchant's dunning policy (docs/billing.md "Dunning policy"): how many attempts an invoice
 * gets, for how many days after its first failure, and what happens when retrying stops. Shared
 * by the API (GET/POST /v1/billing/dunning_policy), the CLI and charging. A merchant sets only the
 * fields it wants; the others are paystep's defaults. Each failure is planned with the policy in
 * force at that moment, so a change applies to the next failure of invoices already in dunning.
 */
import { DEFAULT_DUNNING_POLICY, dunningPolicyProblems, type DunningPolicy } from '../domain/dunning.ts';
import { invalidRequest } from '../shared/errors.ts';
import { getMerchant, setMerchantDunningPolicy } from '../store/merchants.ts';

const FIELDS: readonly (keyof DunningPolicy)[] = ['max_attempts', 'window_days', 'final_action'];

export interface PresentedPolicy extends DunningPolicy {
  object: 'dunning_policy';
  /** The fields the merchant set (the others are paystep's defaults). */
  customized: (keyof DunningPolicy)[];
}

const present = (own: Partial<DunningPolicy> | undefined): PresentedPolicy => ({
  object: 'dunning_policy',
  ...DEFAULT_DUNNING_POLICY,
  ...own,
  customized: FIELDS.filter((f) => own?.[f] !== undefined),
});

/** The policy in force for the merchant (its own fields over the defaults). */
export async function dunningPolicyFor(merchantId: string): Promise<DunningPolicy> {
  const { object: _o, customized: _c, ...policy } = present((await getMerchant(merchantId))?.dunning_policy);
  return policy;
}

export async function showDunningPolicy(merchantId: string): Promise<PresentedPolicy> {
  return present((await getMerchant(merchantId))?.dunning_policy);
}

/**
 * Changes the fields given (`null` puts a field back to paystep's default); a 400 naming the
 * first bad field, nothing written. Returns the policy now in force.
 */
export async function updateDunningPolicy(merchantId: string, raw: unknown): Promise<PresentedPolicy> {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw))
    throw invalidRequest('parameter_invalid', 'The body must be a JSON object of policy fields.');
  const body = raw as Record<string, unknown>;
  for (const k of Object.keys(body))
    if (!(FIELDS as readonly string[]).includes(k))
      throw invalidRequest(
        'parameter_unknown',
        `Received unknown parameter: ${k} (the policy has ${FIELDS.join(', ')})`,
        k,
      );
  const set = Object.fromEntries(Object.entries(body).filter(([, v]) => v !== null));
  const problems = dunningPolicyProblems(set);
  if (problems.length)
    throw invalidRequest(
      'parameter_invalid',
      `Invalid dunning policy: ${problems.map((p) => `${p.field} ${p.message}`).join('; ')}`,
      problems[0]!.field,
    );
  const current = (await getMerchant(merchantId))?.dunning_policy ?? {};
  const next: Partial<DunningPolicy> = { ...current, ...set };
  for (const [k, v] of Object.entries(body)) if (v === null) delete next[k as keyof DunningPolicy];
  const m = await setMerchantDunningPolicy(merchantId, next);
  return present(m?.dunning_policy);
}
