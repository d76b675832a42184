/**
 * Processor selection (docs/routing.md): a merchant's routing configuration — rules on the
 * payment's facts, a priority list or a deterministic volume split per rule, a default, and which
 * soft declines cascade to the next processor — validated, and turned into the ordered list of
 * processors a payment tries, with the reason in words. Pure: the caller passes what it knows
 * (enabled processors, capabilities, which processors are unavailable and why).
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Failure, FailureCategory } from '../connectors/types.ts';

// ---------------------------------------------------------------------------------------------
// The configuration

/** The soft declines that cascade when a configuration does not say (docs/routing.md). */
export const DEFAULT_CASCADE = {
  codes: ['issuer_not_available', 'processing_error', 'try_again_later'] as readonly string[],
  max_attempts: 2,
};

const list = (item: z.ZodString) => z.array(item).min(1, 'must list at least one value');
const lower = z
  .string()
  .min(1)
  .transform((s) => s.toLowerCase());
const upper = z
  .string()
  .regex(/^[A-Za-z]{2}$/, 'must be an ISO 3166-1 alpha-2 country code')
  .transform((s) => s.toUpperCase());

const condition = z
  .object({
    currency: list(z.string().regex(/^[A-Za-z]{3}$/, 'must be an ISO 4217 currency code')).transform((a) =>
      a.map((c) => c.toLowerCase()),
    ),
    amount_gte: z.number().int().nonnegative(),
    amount_lt: z.number().int().positive(),
    customer_country: z.array(upper).min(1, 'must list at least one value'),
    card_brand: z.array(lower).min(1, 'must list at least one value'),
    bin: list(z.string().regex(/^\d{1,8}$/, 'must be a BIN prefix of 1 to 8 digits')),
    issuer_country: z.array(upper).min(1, 'must list at least one value'),
    payment_method_type: z.array(z.enum(['card'])).min(1, 'must list at least one value'),
    channel: z.array(lower).min(1, 'must list at least one value'),
    metadata: z.record(z.string().min(1).max(40), z.union([z.literal('*'), list(z.string().max(500))])),
  })
  .partial()
  .strict();

const processorName = z.string().min(1).max(40);

const rule = z
  .object({
    name: z.string().trim().min(1, 'must not be empty').max(80),
    when: condition.default({}),
    processors: z.array(processorName).min(1, 'must list at least one processor').optional(),
    split: z.record(processorName, z.number()).optional(),
    fallback: z.array(processorName).optional(),
  })
  .strict();

const schema = z
  .object({
    rules: z.array(rule).max(200).default([]),
    default: z.array(processorName).min(1, 'must list at least one processor').optional(),
    cascade: z
      .object({
        codes: z.array(z.string().min(1)).default([...DEFAULT_CASCADE.codes]),
        max_attempts: z.number().int().min(1).max(5).default(2),
      })
      .strict()
      .optional(),
  })
  .strict();

export type RoutingConfig = z.output<typeof schema>;
export type RoutingRuleConfig = z.output<typeof rule>;
export type RoutingConditions = z.output<typeof condition>;

export interface ConfigProblem {
  /** Where, as a path: `rules[1].split`, `cascade.codes[0]`. */
  field: string;
  message: string;
}

export interface ValidationContext {
  /** Processors paystep has connectors for. */
  known: readonly string[];
  /** Processors the platform has enabled. */
  enabled: readonly string[];
  /** Why a processor cannot take a payment in `currency`, or undefined (connector capabilities). */
  cannotTakeCurrency: (processor: string, currency: string) => string | undefined;
  /** paystep's failure codes with their category and retryability (connector decline tables). */
  failureCodes: ReadonlyMap<string, { category: FailureCategory; retryable: boolean }>;
}

const NEVER_CASCADED: ReadonlySet<FailureCategory> = new Set([
  'hard_decline',
  'fraud',
  'authentication',
  'invalid_request',
]);

const pathOf = (path: readonly PropertyKey[]): string =>
  path.reduce<string>(
    (s, k) => (typeof k === 'number' ? `${s}[${k}]` : s ? `${s}.${String(k)}` : String(k)),
    '',
  ) || '(config)';

/** Close spellings (`issuer_unavailable` → `issuer_not_available`): the most shared letter pairs. */
function suggest(value: string, options: Iterable<string>): string {
  const pairs = (s: string) =>
    new Set(Array.from({ length: Math.max(0, s.length - 1) }, (_, i) => s.slice(i, i + 2)));
  const mine = pairs(value);
  let best: string | undefined;
  let score = 0.5; // below this, nothing is close enough to suggest
  for (const o of options) {
    const theirs = pairs(o);
    const dice = (2 * [...mine].filter((p) => theirs.has(p)).length) / (mine.size + theirs.size || 1);
    if (dice > score) [best, score] = [o, dice];
  }
  return best ? ` (did you mean "${best}"?)` : '';
}

/**
 * Validates a routing configuration as a merchant sent it. Every problem is named by its field;
 * the result is the normalized config (lowercase currencies, uppercase countries, defaults).
 */
export function validateRoutingConfig(
  raw: unknown,
  ctx: ValidationContext,
): { ok: true; config: RoutingConfig } | { ok: false; problems: ConfigProblem[] } {
  const parsed = schema.safeParse(raw);
  if (!parsed.success)
    return {
      ok: false,
      problems: parsed.error.issues.map((i) => ({
        field: pathOf(i.path),
        message:
          i.code === 'unrecognized_keys'
            ? `unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')}`
            : i.message,
      })),
    };
  const config = parsed.data;
  const problems: ConfigProblem[] = [];
  const checkProcessor = (p: string, field: string): void => {
    if (!ctx.known.includes(p))
      problems.push({ field, message: `"${p}" is not a processor paystep knows (${ctx.known.join(', ')})` });
    else if (!ctx.enabled.includes(p))
      problems.push({ field, message: `"${p}" is not enabled on this platform (${ctx.enabled.join(', ')})` });
  };
  const names = new Set<string>();
  config.rules.forEach((r, i) => {
    const at = `rules[${i}]`;
    if (names.has(r.name))
      problems.push({ field: `${at}.name`, message: `"${r.name}" is the name of an earlier rule` });
    names.add(r.name);
    if (!r.processors === !r.split)
      problems.push({
        field: at,
        message: 'a rule has either "processors" (a priority list) or "split" (weights)',
      });
    if (r.fallback && !r.split)
      problems.push({
        field: `${at}.fallback`,
        message: '"fallback" goes with "split"; list the order in "processors"',
      });
    r.processors?.forEach((p, j) => checkProcessor(p, `${at}.processors[${j}]`));
    r.fallback?.forEach((p, j) => checkProcessor(p, `${at}.fallback[${j}]`));
    if (r.split) {
      const entries = Object.entries(r.split);
      if (!entries.length)
        problems.push({ field: `${at}.split`, message: 'must give at least one processor a weight' });
      for (const [p, w] of entries) {
        checkProcessor(p, `${at}.split.${p}`);
        if (!Number.isInteger(w) || w < 0 || w > 100)
          problems.push({ field: `${at}.split.${p}`, message: 'a weight is a whole number from 0 to 100' });
      }
      const sum = entries.reduce((s, [, w]) => s + w, 0);
      if (entries.length && sum !== 100)
        problems.push({ field: `${at}.split`, message: `the weights must sum to 100 (they sum to ${sum})` });
    }
    const { amount_gte: gte, amount_lt: lt, currency } = r.when;
    if (gte !== undefined && lt !== undefined && gte >= lt)
      problems.push({
        field: `${at}.when`,
        message: 'amount_gte must be less than amount_lt: no amount can match',
      });
    for (const c of currency ?? []) {
      const targets: [string, string][] = [
        ...(r.processors ?? []).map((p, j): [string, string] => [p, `${at}.processors[${j}]`]),
        ...Object.entries(r.split ?? {})
          .filter(([, w]) => w > 0)
          .map(([p]): [string, string] => [p, `${at}.split.${p}`]),
        ...(r.fallback ?? []).map((p, j): [string, string] => [p, `${at}.fallback[${j}]`]),
      ];
      for (const [p, field] of targets) {
        const why = ctx.known.includes(p) ? ctx.cannotTakeCurrency(p, c) : undefined;
        if (why)
          problems.push({ field, message: `the rule routes ${c.toUpperCase()} payments here, but ${why}` });
      }
    }
  });
  config.default?.forEach((p, j) => checkProcessor(p, `default[${j}]`));
  config.cascade?.codes.forEach((code, j) => {
    const field = `cascade.codes[${j}]`;
    const info = ctx.failureCodes.get(code);
    if (!info)
      problems.push({
        field,
        message: `"${code}" is not one of paystep's failure codes${suggest(code, ctx.failureCodes.keys())}`,
      });
    else if (NEVER_CASCADED.has(info.category) || !info.retryable)
      problems.push({
        field,
        message: `"${code}" is a ${info.category.replace('_', ' ')}${info.retryable ? '' : ' that must not be retried'}: it is never cascaded`,
      });
  });
  return problems.length ? { ok: false, problems } : { ok: true, config };
}

// ---------------------------------------------------------------------------------------------
// Routing a payment

/** What routing knows about a payment; unknown facts never match a condition. */
export interface PaymentFacts {
  id: string;
  amount: number;
  currency: string;
  captureMethod?: 'automatic' | 'manual';
  customerCountry?: string;
  cardBrand?: string;
  bin?: string;
  issuerCountry?: string;
  paymentMethodType?: 'card';
  /** The payment's channel as the merchant sent it (`web`, `mobile`, `moto`, `recurring`, …). */
  channel?: string;
  metadata?: Readonly<Record<string, string>>;
}

export interface RouteContext {
  /** Enabled processors, the platform's order. */
  enabled: readonly string[];
  /** The merchant's processor order (`paystep merchant update --processors`). */
  merchantOrder?: readonly string[];
  /**
   * Why a processor cannot be used for this payment now, or undefined: capabilities (currency,
   * capture), an open circuit breaker, an incident. Checked for every candidate.
   */
  unavailable?: (processor: string) => string | undefined;
  /**
   * Why a processor should be tried only after the others (an open circuit breaker: it may have
   * recovered, and a payment no other processor can take still gets its chance), or undefined.
   */
  demoted?: (processor: string) => string | undefined;
}

export interface RouteDecision {
  /** The processors to try, in order; empty when none can take the payment. */
  processors: string[];
  /** The rule that decided: a rule's name, `default`, `merchant default` or `platform default`. */
  rule: string;
  /** Candidates left out, and why. */
  skipped: { processor: string; reason: string }[];
  /** The decision in words (timeline, simulate). */
  explanation: string;
}

/** The payment's bucket (0–9999) for a rule's split: stable per payment and rule. */
export function splitBucket(paymentId: string, ruleName: string): number {
  return createHash('sha256').update(`${ruleName}\u0000${paymentId}`).digest().readUInt32BE(0) % 10_000;
}

/** The processor whose share holds `bucket`; weights in alphabetical order of names. */
export function splitPick(split: Readonly<Record<string, number>>, bucket: number): string {
  const entries = Object.entries(split)
    .filter(([, w]) => w > 0)
    .sort(([a], [b]) => a.localeCompare(b));
  let upper = 0;
  for (const [p, w] of entries) {
    upper += w * 100;
    if (bucket < upper) return p;
  }
  return entries.at(-1)![0];
}

function describe(when: RoutingConditions): string {
  const parts: string[] = [];
  if (when.currency) parts.push(`currency ${when.currency.map((c) => c.toUpperCase()).join('/')}`);
  if (when.amount_gte !== undefined) parts.push(`amount ≥ ${when.amount_gte}`);
  if (when.amount_lt !== undefined) parts.push(`amount < ${when.amount_lt}`);
  if (when.customer_country) parts.push(`customer_country ${when.customer_country.join('/')}`);
  if (when.card_brand) parts.push(`card_brand ${when.card_brand.join('/')}`);
  if (when.bin) parts.push(`bin ${when.bin.join('/')}`);
  if (when.issuer_country) parts.push(`issuer_country ${when.issuer_country.join('/')}`);
  if (when.payment_method_type) parts.push(`payment_method_type ${when.payment_method_type.join('/')}`);
  if (when.channel) parts.push(`channel ${when.channel.join('/')}`);
  for (const [k, v] of Object.entries(when.metadata ?? {}))
    parts.push(v === '*' ? `metadata ${k} present` : `metadata ${k} ${v.join('/')}`);
  return parts.length ? parts.join(', ') : 'every payment';
}

const oneOf = (value: string | undefined, allowed: readonly string[] | undefined, fold = (s: string) => s) =>
  allowed === undefined || (value !== undefined && allowed.includes(fold(value)));

/** Whether a rule's conditions all hold for the payment. */
export function matches(when: RoutingConditions, p: PaymentFacts): boolean {
  if (!oneOf(p.currency, when.currency, (s) => s.toLowerCase())) return false;
  if (when.amount_gte !== undefined && !(p.amount >= when.amount_gte)) return false;
  if (when.amount_lt !== undefined && !(p.amount < when.amount_lt)) return false;
  if (!oneOf(p.customerCountry, when.customer_country, (s) => s.toUpperCase())) return false;
  if (!oneOf(p.cardBrand, when.card_brand, (s) => s.toLowerCase())) return false;
  if (when.bin && !(p.bin !== undefined && when.bin.some((prefix) => p.bin!.startsWith(prefix))))
    return false;
  if (!oneOf(p.issuerCountry, when.issuer_country, (s) => s.toUpperCase())) return false;
  if (!oneOf(p.paymentMethodType, when.payment_method_type)) return false;
  if (!oneOf(p.channel, when.channel, (s) => s.toLowerCase())) return false;
  for (const [k, v] of Object.entries(when.metadata ?? {})) {
    const value = p.metadata?.[k];
    if (value === undefined || (v !== '*' && !v.includes(value))) return false;
  }
  return true;
}

/**
 * The processors a payment tries, in order, and why. Rules are tried in order; the first that
 * matches and leaves an eligible processor decides; else `default`; else the merchant's order;
 * else the platform's. Candidates that are not enabled or `unavailable` are skipped with their
 * reason (a split's pick included: the payment then goes to the next in line, not elsewhere
 * in the split at random).
 */
export function decideRoute(
  config: RoutingConfig | undefined,
  p: PaymentFacts,
  ctx: RouteContext,
): RouteDecision {
  const skipped: RouteDecision['skipped'] = [];
  const eligible = (candidates: readonly string[]): string[] => {
    const out: string[] = [];
    for (const c of candidates) {
      if (out.includes(c) || skipped.some((s) => s.processor === c)) continue;
      const reason = !ctx.enabled.includes(c) ? `${c} is not enabled` : ctx.unavailable?.(c);
      if (reason) skipped.push({ processor: c, reason });
      else out.push(c);
    }
    return out;
  };
  const finish = (candidates: string[], rule: string, why: string): RouteDecision => {
    const demoted = candidates.map((c) => [c, ctx.demoted?.(c)] as const).filter(([, d]) => d);
    const processors = [
      ...candidates.filter((c) => !demoted.some(([d]) => d === c)),
      ...demoted.map(([c]) => c),
    ];
    const demotedText =
      demoted.length && candidates.length > 1 ? ` Tried last: ${demoted.map(([, d]) => d).join('; ')}.` : '';
    const skippedText = skipped.length ? ` Skipped: ${skipped.map((s) => s.reason).join('; ')}.` : '';
    const none = processors.length ? '' : ' No processor can take this payment.';
    return { processors, rule, skipped, explanation: `${why}${none}${demotedText}${skippedText}` };
  };

  for (const r of config?.rules ?? []) {
    if (!matches(r.when, p)) continue;
    let order: string[];
    let why: string;
    if (r.split) {
      const bucket = splitBucket(p.id, r.name);
      const pick = splitPick(r.split, bucket);
      const rest =
        r.fallback ??
        Object.entries(r.split)
          .filter(([name, w]) => name !== pick && w > 0)
          .sort(([a, wa], [b, wb]) => wb - wa || a.localeCompare(b))
          .map(([name]) => name);
      order = [pick, ...rest];
      const shares = Object.entries(r.split)
        .map(([, w]) => w)
        .join('/');
      why = `rule "${r.name}" matched (${describe(r.when)}): the ${shares} split put this payment in ${pick}'s share (bucket ${bucket} of 10000)`;
      const after = rest.filter((x) => x !== pick);
      if (after.length)
        why += `; then ${r.fallback ? 'fallback' : "the split's other processors"} ${after.join(', ')}`;
    } else {
      order = [...r.processors!];
      why = `rule "${r.name}" matched (${describe(r.when)}): ${order.join(', ')} in that order`;
    }
    const processors = eligible(order);
    if (processors.length) return finish(processors, r.name, `${why}.`);
    skipped.push({
      processor: '*',
      reason: `rule "${r.name}" matched but none of its processors can be used`,
    });
  }
  if (config?.default) {
    const processors = eligible(config.default);
    if (processors.length)
      return finish(processors, 'default', `no rule decided: the default ${config.default.join(', ')}.`);
  }
  const merchant = [...new Set(ctx.merchantOrder ?? [])].filter((x) => ctx.enabled.includes(x));
  if (merchant.length) {
    const processors = eligible([...merchant, ...ctx.enabled.filter((x) => !merchant.includes(x))]);
    if (processors.length)
      return finish(processors, 'merchant default', `the merchant's processor order ${merchant.join(', ')}.`);
  }
  const processors = eligible(ctx.enabled);
  return finish(
    processors,
    'platform default',
    `the platform's enabled processors ${ctx.enabled.join(', ')}.`,
  );
}

// ---------------------------------------------------------------------------------------------
// After an attempt: done, check, fail over, cascade

/** How an attempt ended, as the workflow classifies the connector's answer. */
export type AttemptOutcome =
  | { kind: 'succeeded' } // authorized, captured, requires_action or pending at the processor
  | { kind: 'not_processed'; reason: string } // provably nothing happened there
  | { kind: 'unknown'; reason: string } // it may have been processed
  | {
      kind: 'declined';
      failure: Pick<Failure, 'category' | 'code' | 'retryable'> & { merchant_advice_code?: string };
    };

export type NextStep =
  | { step: 'done' }
  | { step: 'check_same_processor'; reason: string }
  | { step: 'try_next'; processor: string; reason: string; cascade: boolean }
  | { step: 'stop'; reason: string };

/** Mastercard merchant advice codes that forbid another attempt ("do not try again"). */
const DO_NOT_RETRY_ADVICE = new Set(['03', '21']);

/**
 * What to do after an attempt, given the route and the attempts made so far (this one included).
 * Never moves on after an unknown outcome; cascades only allow-listed, retryable soft declines
 * within `max_attempts`.
 */
export function nextStep(
  outcome: AttemptOutcome,
  route: readonly string[],
  attemptsMade: number,
  cascade: { codes: readonly string[]; max_attempts: number } = DEFAULT_CASCADE,
): NextStep {
  const next = route[attemptsMade];
  switch (outcome.kind) {
    case 'succeeded':
      return { step: 'done' };
    case 'unknown':
      return {
        step: 'check_same_processor',
        reason: `${outcome.reason}: the processor may have processed it, so it is checked there before anything else`,
      };
    case 'not_processed':
      return next
        ? {
            step: 'try_next',
            processor: next,
            reason: `${outcome.reason}; nothing was processed`,
            cascade: false,
          }
        : { step: 'stop', reason: `${outcome.reason}; no other processor on the route` };
    case 'declined': {
      const f = outcome.failure;
      const no = (why: string): NextStep => ({ step: 'stop', reason: `declined (${f.code}): ${why}` });
      if (NEVER_CASCADED.has(f.category))
        return no(`a ${f.category.replace('_', ' ')} is never retried elsewhere`);
      if (!f.retryable) return no('the decline says not to try again');
      if (f.merchant_advice_code && DO_NOT_RETRY_ADVICE.has(f.merchant_advice_code))
        return no(`the card network's advice code ${f.merchant_advice_code} forbids another attempt`);
      if (!cascade.codes.includes(f.code)) return no('its code is not on the cascade list');
      if (attemptsMade >= cascade.max_attempts) return no(`${attemptsMade} attempts made, the most allowed`);
      if (!next) return no('no other processor on the route');
      return {
        step: 'try_next',
        processor: next,
        reason: `declined (${f.code}), which may succeed elsewhere`,
        cascade: true,
      };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The payment workflow's current route step (before routing configurations are wired in)

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
