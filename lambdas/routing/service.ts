/**
 * Routing configurations, shared by the API (GET/PUT /v1/routing, POST /v1/routing/simulate) and
 * the CLI (`paystep routing show|set|simulate`): validation against what the platform has
 * (enabled processors, their capabilities, paystep's failure codes), versioned writes, and the
 * decision a payment would get, in words (docs/routing.md).
 */
import { z } from 'zod';
import { cannotTake, knownProcessors } from '../connectors/capabilities.ts';
import { failureCodes } from '../connectors/failure-codes.ts';
import {
  DEFAULT_CASCADE,
  decideRoute,
  validateRoutingConfig,
  type PaymentFacts,
  type RouteDecision,
  type RoutingConfig,
} from '../domain/routing.ts';
import { config } from '../shared/config.ts';
import { ApiError, invalidRequest } from '../shared/errors.ts';
import { newId } from '../shared/ids.ts';
import { getMerchant } from '../store/merchants.ts';
import { currentRouting, putRoutingVersion, routingVersion, type StoredRouting } from '../store/routing.ts';

export interface PresentedRouting {
  object: 'routing_config';
  /** 0 when the merchant has none (the merchant's processor order and the platform's apply). */
  version: number;
  created: number | null;
  source: StoredRouting['source'] | null;
  config: RoutingConfig | null;
  /** The cascade in force (the config's, or the default). */
  cascade: { codes: readonly string[]; max_attempts: number };
}

export const presentRouting = (r: StoredRouting | undefined): PresentedRouting => ({
  object: 'routing_config',
  version: r?.version ?? 0,
  created: r?.created ?? null,
  source: r?.source ?? null,
  config: r?.config ?? null,
  cascade: r?.config.cascade ?? DEFAULT_CASCADE,
});

/** The configuration in force, or one version (404 when it does not exist). */
export async function getRouting(merchantId: string, version?: number): Promise<PresentedRouting> {
  if (version === undefined) return presentRouting(await currentRouting(merchantId));
  const r = await routingVersion(merchantId, version);
  if (!r)
    throw new ApiError(
      404,
      'invalid_request_error',
      'resource_missing',
      `No such routing version: ${version}`,
      'version',
    );
  return presentRouting(r);
}

/** Parses `?version=`: a positive integer, or a 400 naming it. */
export function parseVersion(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^[1-9]\d{0,8}$/.test(raw))
    throw invalidRequest('parameter_invalid', 'Invalid version: must be a positive whole number.', 'version');
  return Number(raw);
}

/** Validates a configuration against this platform; a 400 naming the first field and listing all. */
export function checkRoutingConfig(raw: unknown): RoutingConfig {
  const r = validateRoutingConfig(raw, {
    known: knownProcessors(),
    enabled: config.processors(),
    cannotTakeCurrency: (p, currency) => cannotTake(p, { currency }),
    failureCodes: failureCodes(),
  });
  if (r.ok) return r.config;
  const message = r.problems.map((p) => `${p.field}: ${p.message}`).join('; ');
  throw invalidRequest(
    'routing_config_invalid',
    `Invalid routing configuration: ${message}`,
    r.problems[0]!.field,
  );
}

/**
 * Makes `raw` the merchant's configuration: a new version, unless it equals the current one
 * (then the current one is returned, so a retried PUT creates nothing). 409 when another write
 * created the next version first.
 */
export async function setRouting(
  merchantId: string,
  raw: unknown,
  source: StoredRouting['source'],
): Promise<{ routing: PresentedRouting; created: boolean }> {
  const cfg = checkRoutingConfig(raw);
  const current = await currentRouting(merchantId);
  if (current && JSON.stringify(current.config) === JSON.stringify(cfg))
    return { routing: presentRouting(current), created: false };
  const next: StoredRouting = {
    merchant_id: merchantId,
    version: (current?.version ?? 0) + 1,
    config: cfg,
    created: Math.floor(Date.now() / 1000),
    source,
  };
  if (!(await putRoutingVersion(next)))
    throw new ApiError(
      409,
      'invalid_request_error',
      'routing_config_conflict',
      `Routing version ${next.version} was written by another request meanwhile; read it and try again.`,
    );
  return { routing: presentRouting(next), created: true };
}

const Country = z.string().regex(/^[A-Za-z]{2}$/, 'must be an ISO 3166-1 alpha-2 country code');

/** What `POST /v1/routing/simulate` takes: a payment's routing facts. */
export const SimulateBody = z.strictObject({
  id: z.string().min(1).max(255).optional(),
  amount: z.number('amount must be an integer number of minor units').int().positive(),
  currency: z.string().regex(/^[A-Za-z]{3}$/, 'currency must be a three-letter ISO 4217 code'),
  capture_method: z.enum(['automatic', 'manual']).optional(),
  /** The payment method: a live processor token pins the route (decision 0004). */
  payment_method: z.string().min(1).max(255).optional(),
  customer: z.strictObject({ country: Country.optional() }).optional(),
  card_brand: z.string().min(1).max(40).optional(),
  bin: z
    .string()
    .regex(/^\d{6,8}$/, 'bin must be 6 to 8 digits')
    .optional(),
  issuer_country: Country.optional(),
  payment_method_type: z.enum(['card']).optional(),
  channel: z.string().min(1).max(40).optional(),
  metadata: z.record(z.string().min(1).max(40), z.string().max(500)).optional(),
  /** A configuration to try instead of the stored one (what-if before a PUT). */
  config: z.unknown().optional(),
});
export type SimulateInput = z.infer<typeof SimulateBody>;

export interface Simulation extends RouteDecision {
  object: 'routing_simulation';
  /** The version that decided (0: none stored; null: the config given in the request). */
  version: number | null;
}

/** The processors a payment with these facts would try, in order, and why. */
export async function simulateRoute(merchantId: string, input: SimulateInput): Promise<Simulation> {
  const stored = input.config === undefined ? await currentRouting(merchantId) : undefined;
  const cfg = input.config === undefined ? stored?.config : checkRoutingConfig(input.config);
  const facts: PaymentFacts = {
    id: input.id ?? newId('pay'),
    amount: input.amount,
    currency: input.currency.toLowerCase(),
    ...(input.capture_method ? { captureMethod: input.capture_method } : {}),
    ...(input.customer?.country ? { customerCountry: input.customer.country.toUpperCase() } : {}),
    ...(input.card_brand ? { cardBrand: input.card_brand.toLowerCase() } : {}),
    ...(input.bin ? { bin: input.bin } : {}),
    ...(input.issuer_country ? { issuerCountry: input.issuer_country.toUpperCase() } : {}),
    ...(input.payment_method_type ? { paymentMethodType: input.payment_method_type } : {}),
    ...(input.channel ? { channel: input.channel } : {}),
    ...(input.metadata ? { metadata: input.metadata } : {}),
  };
  const merchant = await getMerchant(merchantId);
  const decision = decideRoute(cfg, facts, {
    enabled: config.processors(),
    merchantOrder: merchant?.processors ?? [],
    unavailable: (p) =>
      cannotTake(p, {
        currency: facts.currency,
        captureMethod: facts.captureMethod,
        ...(input.payment_method ? { paymentMethod: input.payment_method } : {}),
      }),
  });
  return {
    object: 'routing_simulation',
    version: input.config === undefined ? (stored?.version ?? 0) : null,
    ...decision,
  };
}
