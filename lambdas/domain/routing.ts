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

export function choose(input: RoutingInput, rules: RoutingRule[], available: string[]): Route {
  for (const rule of rules) {
    if (!rule.matches(input)) continue;
    const processors = rule.processors.filter((p) => available.includes(p));
    if (processors.length) return { processors, rule: rule.name };
  }
  if (!available.length) throw new Error('no processor is configured');
  return { processors: [...available], rule: 'default' };
}

/** Rules in force: none yet beyond the default (every configured processor, in order). */
export const DEFAULT_RULES: RoutingRule[] = [];
