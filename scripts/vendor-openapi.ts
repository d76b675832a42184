/**
 * Writes vendor/openapi/{stripe,adyen}/schemas.json: JSON Schemas (draft 2020-12) of the processor
 * responses paystep relies on, at exactly the API versions the connectors pin.
 *
 * Source: the type declarations that Stripe and Adyen generate from their OpenAPI specifications and
 * ship in the SDKs this repository pins in package-lock.json (`stripe`, whose `Stripe.API_VERSION` is
 * the version the Stripe connector sends; `@adyen/api-library`, whose Checkout client calls v72 and
 * Disputes client v30). Each declaration is one OpenAPI schema: its properties, which are required,
 * which are nullable (`| null`), and its enums (string literal unions, Adyen's `enum`s). Stripe's
 * extensible enums (`… | OtherString`) are kept closed: the simulator must answer a listed value.
 *
 * Only the subset paystep uses is written (ROOTS below and what they reference, within FOLLOW); any
 * other object the API could expand in its place is a plain `object`. Every written object schema
 * is closed (`additionalProperties: false`, except maps such as `metadata`): an unknown field in a
 * simulator's answer fails the check.
 *
 * Run after upgrading either SDK: `node scripts/vendor-openapi.ts` (test/contract/simulator-schemas
 * fails while the vendored versions differ from the installed ones).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as prettier from 'prettier';
import ts from 'typescript';

const ROOT = path.resolve(import.meta.dirname, '..');

type Schema = Record<string, unknown>;

interface Target {
  processor: 'stripe' | 'adyen';
  /** Type-only module whose exported aliases are the roots (name → TypeScript type). */
  entry: string;
  roots: Record<string, string>;
  /** Whether a named declaration (its module path and qualified name) is written out in full. */
  follow: (modulePath: string, qualified: string) => boolean;
  /** The name of a written schema (default: its qualified name). */
  name?: (modulePath: string, qualified: string) => string;
  /** The installed packages the schemas come from, recorded in the output. */
  packages: string[];
  apiVersion: string;
}

const STRIPE_FOLLOW = new Set([
  'PaymentIntent',
  'Charge',
  'Refund',
  'Dispute',
  'Payout',
  'BalanceTransaction',
  'Balance',
  'PaymentMethod',
  'Address',
  'Metadata',
  'Event',
  'EventBase',
  'ApiList',
]);

const STRIPE_EVENTS = {
  'payment_intent.created': 'PaymentIntentCreatedEvent',
  'payment_intent.requires_action': 'PaymentIntentRequiresActionEvent',
  'payment_intent.amount_capturable_updated': 'PaymentIntentAmountCapturableUpdatedEvent',
  'payment_intent.succeeded': 'PaymentIntentSucceededEvent',
  'payment_intent.payment_failed': 'PaymentIntentPaymentFailedEvent',
  'payment_intent.canceled': 'PaymentIntentCanceledEvent',
  'charge.succeeded': 'ChargeSucceededEvent',
  'charge.failed': 'ChargeFailedEvent',
  'charge.captured': 'ChargeCapturedEvent',
  'charge.refunded': 'ChargeRefundedEvent',
  'charge.refund.updated': 'ChargeRefundUpdatedEvent',
  'refund.created': 'RefundCreatedEvent',
  'refund.updated': 'RefundUpdatedEvent',
  'refund.failed': 'RefundFailedEvent',
  'charge.dispute.created': 'ChargeDisputeCreatedEvent',
  'charge.dispute.updated': 'ChargeDisputeUpdatedEvent',
  'charge.dispute.closed': 'ChargeDisputeClosedEvent',
  'charge.dispute.funds_withdrawn': 'ChargeDisputeFundsWithdrawnEvent',
  'charge.dispute.funds_reinstated': 'ChargeDisputeFundsReinstatedEvent',
  'payout.created': 'PayoutCreatedEvent',
  'payout.paid': 'PayoutPaidEvent',
} as const;

export const TARGETS: Target[] = [
  {
    processor: 'stripe',
    entry: [
      "import type Stripe from 'stripe';",
      // `error` is Stripe's `error` schema: `{ error: api_errors }`; the SDK names `api_errors`
      // PaymentIntent.LastPaymentError.
      'export type error = { error: Stripe.PaymentIntent.LastPaymentError };',
      'export type payment_intent = Stripe.PaymentIntent;',
      'export type charge = Stripe.Charge;',
      'export type refund = Stripe.Refund;',
      'export type dispute = Stripe.Dispute;',
      'export type payout = Stripe.Payout;',
      'export type balance_transaction = Stripe.BalanceTransaction;',
      'export type balance = Stripe.Balance;',
      'export type payment_method = Stripe.PaymentMethod;',
      // Lists: Stripe's list envelope, with the listed object.
      'type List<T> = { object: "list"; data: Array<T>; has_more: boolean; url: string };',
      'export type refund_list = List<Stripe.Refund>;',
      'export type dispute_list = List<Stripe.Dispute>;',
      'export type payout_list = List<Stripe.Payout>;',
      'export type balance_transaction_list = List<Stripe.BalanceTransaction>;',
      ...Object.entries(STRIPE_EVENTS).map(
        ([type, name]) => `export type ${eventRoot(type)} = Stripe.${name};`,
      ),
    ].join('\n'),
    roots: {},
    follow: (_module, q) => STRIPE_FOLLOW.has(q.split('.')[0] as string) || /Event(\.|$)/.test(q),
    packages: ['stripe'],
    apiVersion: '',
  },
  {
    processor: 'adyen',
    entry: [
      "import type { checkout, notification } from '@adyen/api-library/lib/src/typings/index.js';",
      "import type * as disputes from '@adyen/api-library/lib/src/typings/disputes/models.js';",
      'export type checkout_service_error = checkout.ServiceError;',
      'export type payment_response = checkout.PaymentResponse;',
      'export type payment_details_response = checkout.PaymentDetailsResponse;',
      'export type payment_capture_response = checkout.PaymentCaptureResponse;',
      'export type payment_cancel_response = checkout.PaymentCancelResponse;',
      'export type standalone_payment_cancel_response = checkout.StandalonePaymentCancelResponse;',
      'export type payment_refund_response = checkout.PaymentRefundResponse;',
      'export type payment_reversal_response = checkout.PaymentReversalResponse;',
      'export type notification = notification.Notification;',
      'export type notification_request_item = notification.NotificationRequestItem;',
      'export type defense_reasons_response = disputes.DefenseReasonsResponse;',
      'export type supply_defense_document_response = disputes.SupplyDefenseDocumentResponse;',
      'export type delete_defense_document_response = disputes.DeleteDefenseDocumentResponse;',
      'export type defend_dispute_response = disputes.DefendDisputeResponse;',
      'export type accept_dispute_response = disputes.AcceptDisputeResponse;',
      'export type disputes_service_error = disputes.ServiceError;',
    ].join('\n'),
    roots: {},
    follow: (module) => /typings\/(checkout|notification|disputes)\//.test(module),
    name: (module, qualified) => `${/typings\/([^/]+)\//.exec(module)?.[1] ?? ''}.${qualified}`,
    packages: ['@adyen/api-library'],
    apiVersion: 'Checkout API v72, Disputes API v30, standard notification webhook v1',
  },
];

function eventRoot(type: string): string {
  return `event_${type.replace(/\./g, '_')}`;
}

/** The Stripe event types paystep's simulator sends, with their root schema name. */
export const STRIPE_EVENT_ROOTS: Record<string, string> = Object.fromEntries(
  Object.keys(STRIPE_EVENTS).map((t) => [t, eventRoot(t)]),
);

// ---------------------------------------------------------------------------------------------

class Converter {
  readonly defs: Record<string, Schema> = {};
  private readonly names = new Map<ts.Symbol, string>();
  readonly loose = new Set<string>();
  private readonly checker: ts.TypeChecker;
  private readonly target: Target;

  constructor(checker: ts.TypeChecker, target: Target) {
    this.checker = checker;
    this.target = target;
  }

  /** The declaring module (file path) and the name inside it of a named declaration. */
  private where(sym: ts.Symbol): { module: string; qualified: string } {
    const full = this.checker.getFullyQualifiedName(sym);
    const m = /^"([^"]+)"\.(.*)$/.exec(full);
    return m ? { module: m[1] as string, qualified: m[2] as string } : { module: '', qualified: full };
  }

  convert(type: ts.Type, site: string): Schema {
    const c = this.checker;
    if (type.flags & ts.TypeFlags.Any || type.flags & ts.TypeFlags.Unknown) return {};
    if (type.flags & ts.TypeFlags.Null) return { type: 'null' };
    if (type.flags & ts.TypeFlags.Undefined) return {};
    if (type.flags & ts.TypeFlags.BooleanLike) {
      if (type.flags & ts.TypeFlags.BooleanLiteral)
        return {
          type: 'boolean',
          const: (type as unknown as { intrinsicName: string }).intrinsicName === 'true',
        };
      return { type: 'boolean' };
    }
    if (type.isStringLiteral()) return { type: 'string', enum: [type.value] };
    if (type.isNumberLiteral()) return { type: 'number', enum: [type.value] };
    if (type.flags & ts.TypeFlags.StringLike) return { type: 'string' };
    if (type.flags & ts.TypeFlags.NumberLike) return { type: 'number' };
    if (type.isUnion()) return this.union(type.types, site);
    if (type.isIntersection()) {
      // Stripe's OtherString (`string & { _?: never }`): the open end of an enum, dropped.
      if (type.types.some((t) => t.flags & ts.TypeFlags.String)) return { type: 'string', open: true };
      return { allOf: type.types.map((t) => this.convert(t, site)) };
    }
    if (c.isArrayType(type) || c.isTupleType(type)) {
      const [item] = c.getTypeArguments(type as ts.TypeReference);
      return { type: 'array', items: item ? this.convert(item, `${site}[]`) : {} };
    }
    const sym = type.aliasSymbol ?? type.getSymbol();
    if (sym?.getName() === 'Date') return { type: 'string' };
    if (sym && sym.flags & (ts.SymbolFlags.Interface | ts.SymbolFlags.Class) && !type.aliasSymbol) {
      const { module, qualified } = this.where(sym);
      if (!this.target.follow(module, qualified)) {
        this.loose.add(qualified);
        return { type: 'object' };
      }
      const name = this.target.name?.(module, qualified) ?? qualified;
      return { $ref: `#/$defs/${this.define(sym, type, name)}` };
    }
    return this.object(type, site);
  }

  private define(sym: ts.Symbol, type: ts.Type, qualified: string): string {
    const known = this.names.get(sym);
    if (known) return known;
    let name = qualified;
    for (let i = 2; name in this.defs; i++) name = `${qualified}~${i}`;
    this.names.set(sym, name);
    this.defs[name] = {};
    this.defs[name] = this.object(type, qualified);
    return name;
  }

  private object(type: ts.Type, site: string): Schema {
    const c = this.checker;
    const index = c.getIndexInfoOfType(type, ts.IndexKind.String);
    const props = c.getPropertiesOfType(type).filter((p) => {
      const decl = p.valueDeclaration ?? p.declarations?.[0];
      if (
        decl &&
        ts.canHaveModifiers(decl) &&
        ts.getModifiers(decl)?.some((m) => m.kind === ts.SyntaxKind.StaticKeyword)
      )
        return false;
      const t = c.getTypeOfSymbol(p);
      return t.getCallSignatures().length === 0;
    });
    const schema: Schema = { type: 'object' };
    if (props.length) {
      const properties: Record<string, Schema> = {};
      const required: string[] = [];
      for (const p of props) {
        const name = p.getName();
        properties[name] = this.convert(c.getTypeOfSymbol(p), `${site}.${name}`);
        if (!(p.flags & ts.SymbolFlags.Optional)) required.push(name);
      }
      schema.properties = properties;
      if (required.length) schema.required = required;
    }
    schema.additionalProperties = index ? this.convert(index.type, `${site}[*]`) : false;
    return schema;
  }

  private union(members: readonly ts.Type[], site: string): Schema {
    const nullable = members.some((t) => t.flags & ts.TypeFlags.Null);
    const rest = members.filter((t) => !(t.flags & (ts.TypeFlags.Null | ts.TypeFlags.Undefined)));
    const parts = rest.map((t) => this.convert(t, site));
    // `true | false` is boolean; a union of string literals (and an open end) is an enum.
    const bools = parts.filter((p) => p.type === 'boolean');
    const strings = parts.filter((p) => p.type === 'string' && (Array.isArray(p.enum) || p.open));
    const others = parts.filter((p) => !bools.includes(p) && !strings.includes(p));
    const out: Schema[] = [];
    if (bools.length) out.push({ type: 'boolean' });
    if (strings.length) {
      const values = strings.flatMap((p) => (p.enum as string[] | undefined) ?? []);
      out.push(values.length ? { type: 'string', enum: [...new Set(values)] } : { type: 'string' });
    }
    out.push(...others);
    if (nullable) out.push({ type: 'null' });
    return out.length === 1 ? (out[0] as Schema) : { anyOf: out };
  }
}

export function build(target: Target): { schema: Schema; loose: string[] } {
  const dir = path.join(ROOT, 'node_modules', '.cache', 'vendor-openapi');
  mkdirSync(dir, { recursive: true });
  const entry = path.join(dir, `${target.processor}-entry.ts`);
  writeFileSync(entry, target.entry);
  const program = ts.createProgram([entry], {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    baseUrl: ROOT,
    typeRoots: [],
    types: [],
  });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(entry);
  if (!source) throw new Error(`no source ${entry}`);
  const moduleSym = checker.getSymbolAtLocation(source);
  if (!moduleSym) throw new Error('entry has no exports');
  const conv = new Converter(checker, target);
  const roots: Record<string, Schema> = {};
  for (const exp of checker.getExportsOfModule(moduleSym)) {
    const type = checker.getDeclaredTypeOfSymbol(exp);
    if (type.flags & ts.TypeFlags.Any)
      throw new Error(`${target.processor}: ${exp.getName()} did not resolve`);
    roots[exp.getName()] = conv.convert(type, exp.getName());
  }
  const versions = Object.fromEntries(
    target.packages.map((p) => [
      p,
      (
        JSON.parse(readFileSync(path.join(ROOT, 'node_modules', p, 'package.json'), 'utf8')) as {
          version: string;
        }
      ).version,
    ]),
  );
  return {
    schema: {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      $comment: `Generated by scripts/vendor-openapi.ts from ${Object.entries(versions)
        .map(([p, v]) => `${p}@${v}`)
        .join(', ')}; do not edit.`,
      'x-packages': versions,
      'x-api-version': target.apiVersion,
      'x-roots': roots,
      $defs: conv.defs,
    },
    loose: [...conv.loose].sort(),
  };
}

async function main(): Promise<void> {
  const stripe = (await import('stripe')).default as unknown as { API_VERSION: string };
  for (const target of TARGETS) {
    if (target.processor === 'stripe') target.apiVersion = stripe.API_VERSION;
    const { schema, loose } = build(target);
    const out = path.join(ROOT, 'vendor', 'openapi', target.processor, 'schemas.json');
    mkdirSync(path.dirname(out), { recursive: true });
    // Formatted as the repository formats JSON, so that `prettier --check .` passes on it.
    const style = (await prettier.resolveConfig(out)) ?? {};
    writeFileSync(out, await prettier.format(JSON.stringify(schema), { ...style, filepath: out }));
    const defs = Object.keys(schema.$defs as object).length;
    console.log(`${out}: ${Object.keys(schema['x-roots'] as object).length} roots, ${defs} schemas`);
    if (process.argv.includes('--verbose')) console.log(`  loose (not followed): ${loose.join(', ')}`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
