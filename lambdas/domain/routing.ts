/**
 * Processor selection. A router turns a payment into an ordered list of processors to try:
 * the first is the primary, the rest are failover candidates for technical failures. Today one
 * processor (Stripe) is configured; rules (by currency, country, amount, merchant) and health-based
 * failover plug in here without touching the workflow.
 */
export interface RoutingInput {
  merchantId: string;
  amount: number;
  currency: string;
  customerCountry?: string;
}

export interface Route {
  processors: string[];
  rule: string;
}

export interface RoutingRule {
  name: string;
  matches: (p: RoutingInput) => boolean;
  processors: string[];
}

/**
 * The processors to try for a payment that names none: a matching rule's; else the merchant's
 * order (`merchantOrder`, its enabled entries first, the other enabled ones after as failover
 * candidates: rule `merchant default`); else every enabled processor in the platform's order
 * (`platform default`).
 */
export function choose(
  input: RoutingInput,
  rules: RoutingRule[],
  available: string[],
  merchantOrder: readonly string[] = [],
): Route {
  for (const rule of rules) {
    if (!rule.matches(input)) continue;
    const processors = rule.processors.filter((p) => available.includes(p));
    if (processors.length) return { processors, rule: rule.name };
  }
  if (!available.length) throw new Error('no processor is configured');
  const preferred = [...new Set(merchantOrder)].filter((p) => available.includes(p));
  if (preferred.length)
    return {
      processors: [...preferred, ...available.filter((p) => !preferred.includes(p))],
      rule: 'merchant default',
    };
  return { processors: [...available], rule: 'platform default' };
}

/** Rules in force: none yet beyond the default (every configured processor, in order). */
export const DEFAULT_RULES: RoutingRule[] = [];
