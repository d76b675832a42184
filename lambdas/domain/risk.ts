/**
 * The risk screen: simple, explainable rules. Any hit holds the payment for manual review
 * (`pending_review`); the rules never decline on their own. Pure: the velocity count is passed in.
 *
 * Rules and their configuration (environment, read per call so tests and ops can change them;
 * a malformed value is a ConfigError):
 * - amount limit per currency: PAYSTEP_RISK_AMOUNT_LIMITS, e.g. `usd:500000,eur:500000`
 *   (minor units; default 1,000,000 minor units for every currency without a limit);
 * - velocity: more than PAYSTEP_RISK_VELOCITY_LIMIT payments (default 10) by one customer id within
 *   the current hour;
 * - blocked countries: PAYSTEP_RISK_BLOCKED_COUNTRIES (ISO alpha-2, comma separated; default
 *   `KP,IR,SY,CU`) on the customer's country or the card's issuing country.
 */
import { config } from '../shared/config.ts';

export interface RiskInput {
  amount: number;
  currency: string;
  customerCountry?: string;
  cardCountry?: string;
  /** Payments by this customer in the current hour, including this one. */
  customerPaymentsThisHour?: number;
}

export interface RiskDecision {
  decision: 'allow' | 'review';
  reasons: string[];
}

export interface RiskConfig {
  amountLimits: Record<string, number>;
  defaultAmountLimit: number;
  velocityLimit: number;
  blockedCountries: string[];
}

/** The rules' settings from the environment (read and validated in lambdas/shared/config.ts). */
export function riskConfigFromEnv(env?: NodeJS.ProcessEnv): RiskConfig {
  return config.risk(env);
}

export function screen(input: RiskInput, config: RiskConfig): RiskDecision {
  const reasons: string[] = [];
  const limit = config.amountLimits[input.currency] ?? config.defaultAmountLimit;
  if (input.amount > limit)
    reasons.push(`amount ${input.amount} ${input.currency} is above the review limit ${limit}`);
  if ((input.customerPaymentsThisHour ?? 0) > config.velocityLimit)
    reasons.push(
      `customer made ${input.customerPaymentsThisHour} payments this hour (limit ${config.velocityLimit})`,
    );
  for (const [what, country] of [
    ['customer country', input.customerCountry],
    ['card country', input.cardCountry],
  ] as const) {
    if (country && config.blockedCountries.includes(country.toUpperCase()))
      reasons.push(`${what} ${country.toUpperCase()} is on the review list`);
  }
  return { decision: reasons.length ? 'review' : 'allow', reasons };
}
