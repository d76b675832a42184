/**
 * The Stripe simulator's state and what every resource uses: the objects, their journal, events,
 * expansion, validation helpers, PaymentMethods from test ids, balance transactions and lists.
 * The objects, idempotency records and events live in `storage.ts` (on disk with an index in
 * memory, when there is a data dir).
 * Each resource adds its endpoints in a layer over the one before it (payouts.ts, refunds.ts,
 * disputes.ts, payment-intents.ts); simulator.ts routes and serves them over HTTP.
 */
import { randomBase62 } from '../../../../lambdas/shared/ids.ts';
import { createLogger, type Logger } from '../../log.ts';
import { invalid, noSuch } from './errors.ts';
import { StripeFaultController } from './faults.ts';
import type { Reader } from './form.ts';
import { MAXIMUM_AMOUNT, MINIMUM_AMOUNT, THREE_DECIMAL, ZERO_DECIMAL, formatMoney } from './money.ts';
import {
  DEFAULT_API_VERSION,
  EXPANDABLE,
  clone,
  sha256,
  type Kind,
  type RequestContext,
  type SimInfo,
} from './model.ts';
import { StripeStorage, type StorageMemoryStats } from './storage.ts';
import { TEST_PAYMENT_METHODS, type TestCard } from './test-cards.ts';
import type {
  DisputeSettings,
  StripeEvent,
  StripeEventType,
  StripeObject,
  StripeSimulatorOptions,
  StripeSimulatorStats,
} from './types.ts';

/** Events kept (indexed in memory, in the journal) for `events()` and `eventsAfter()`: the latest ones. */
export const EVENT_LOG_LIMIT = 10_000;
/** The journal is compacted while running once it has this many lines and 1.5 times its live records. */
export const JOURNAL_COMPACT_MIN_LINES = 20_000;

export abstract class StripeCore {
  readonly faults = new StripeFaultController();

  protected readonly log: Logger;
  protected readonly now: () => number;
  protected readonly onEvent?: (event: StripeEvent) => void | Promise<void>;
  protected readonly asyncRefundDelayMs: number;
  protected readonly disputeSettings: DisputeSettings;
  protected readonly payoutEveryMs: number;
  /** Objects, their simulator-only state, idempotency records and events (storage.ts). */
  protected readonly store: StripeStorage;
  protected readonly inFlight = new Set<string>();
  private compactScheduled = false;
  private readonly compactMinLines: number;
  protected readonly timers = new Map<string, NodeJS.Timeout>();
  protected counters: StripeSimulatorStats = {
    paymentIntentsCreated: 0,
    confirms: 0,
    captures: 0,
    refunds: 0,
    requests: 0,
  };

  /** Whether the simulator is started (timers run only then). */
  protected running = false;
  protected baseUrl = '';
  protected loaded = false;

  constructor(options: StripeSimulatorOptions = {}) {
    this.log = options.logger ?? createLogger('stripe-simulator');
    this.now = options.now ?? Date.now;
    this.onEvent = options.onEvent;
    this.compactMinLines = options.journalCompactMinLines ?? JOURNAL_COMPACT_MIN_LINES;
    this.asyncRefundDelayMs = options.asyncRefundDelayMs ?? 5000;
    this.disputeSettings = {
      createDelayMs: 1000,
      decisionDelayMs: 1000,
      responseWindowSeconds: 7 * 24 * 3600,
    };
    this.payoutEveryMs =
      options.payoutEveryMs ?? Number(process.env.PAYSTEP_STRIPE_PAYOUT_EVERY_SECONDS ?? 86_400) * 1000;
    this.store = new StripeStorage({
      dataDir: options.dataDir,
      eventLogLimit: options.eventLogLimit ?? EVENT_LOG_LIMIT,
      now: this.now,
      cacheSize: options.objectCacheSize,
    });
  }

  // --- test accessors --------------------------------------------------------------------------

  stats(): StripeSimulatorStats {
    return { ...this.counters };
  }

  /**
   * What the simulator holds, by kind (the soak bench reports it): index entries of objects,
   * idempotency records and events (their records are on disk with a data dir), records held
   * parsed (the LRU, bounded), objects' simulator-only state still waited on, timers.
   */
  memoryStats(): StorageMemoryStats & { timers: number } {
    return { ...this.store.memoryStats(), timers: this.timers.size };
  }

  paymentIntent(id: string): StripeObject | undefined {
    return this.get('payment_intent', id);
  }

  charge(id: string): StripeObject | undefined {
    return this.get('charge', id);
  }

  refund(id: string): StripeObject | undefined {
    return this.get('refund', id);
  }

  /** Every object of a kind (payment_intent, refund, …) whose `field` (a dotted path) is `value`. */
  objectsWhere(object: string, field: string, value: unknown): StripeObject[] {
    const at = (o: unknown, path: string[]): unknown =>
      path.reduce<unknown>(
        (v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined),
        o,
      );
    if (!(EXPANDABLE as Record<string, unknown>)[object]) return [];
    return [...this.store.objectsOf(object as Kind)]
      .filter((o) => at(o, field.split('.')) === value)
      .map((o) => clone(o));
  }

  /** The latest events (EVENT_LOG_LIMIT, up to a tenth more), oldest first. */
  events(): StripeEvent[] {
    return this.store.eventsAfter(0).map((e) => clone(e.event));
  }

  /**
   * The kept events after a cursor, oldest first (at most `limit`), and the cursor to pass next:
   * a reader that polls with it sees every event once, however many were trimmed meanwhile
   * (an event older than the latest EVENT_LOG_LIMIT when first asked for is gone). Start with 0.
   */
  eventsAfter(cursor = 0, limit?: number): { events: StripeEvent[]; cursor: number } {
    const found = this.store.eventsAfter(cursor, limit);
    return {
      events: found.map((e) => clone(e.event)),
      cursor: found.length ? (found.at(-1) as { seq: number }).seq : Math.max(cursor, 0),
    };
  }

  protected listOf(
    p: Reader,
    objects: StripeObject[],
    url: string,
    expandable: readonly string[],
  ): StripeObject {
    const expand = p.expand();
    const paths = expand.map((e) => (e.startsWith('data.') ? e.slice(5) : e));
    if (expand.some((e) => !e.startsWith('data.')))
      throw invalid('This property cannot be expanded.', 'expand');
    if (paths.length) this.checkExpand(paths, expandable);
    const limit = p.integer('limit') ?? 10;
    if (limit < 1 || limit > 100) throw invalid('Invalid limit: must be between 1 and 100', 'limit');
    const after = p.string('starting_after');
    const before = p.string('ending_before');
    let list = objects;
    if (after) {
      const i = list.findIndex((o) => o.id === after);
      if (i < 0) throw noSuch('object', after, 'starting_after');
      list = list.slice(i + 1);
    } else if (before) {
      const i = list.findIndex((o) => o.id === before);
      if (i < 0) throw noSuch('object', before, 'ending_before');
      list = list.slice(Math.max(0, i - limit), i);
    }
    return {
      object: 'list',
      data: list.slice(0, limit).map((o) => this.expanded(o, paths)),
      has_more: list.length > limit,
      url,
    } as unknown as StripeObject;
  }

  protected createdFilter(p: Reader): (o: StripeObject) => boolean {
    const c = p.object('created');
    const eq = c ? undefined : p.integer('created');
    const bound = (k: string) => (c && typeof c[k] === 'string' ? Number(c[k]) : undefined);
    const [gt, gte, lt, lte] = ['gt', 'gte', 'lt', 'lte'].map(bound);
    return (o) => {
      const t = o.created as number;
      return (
        (eq === undefined || t === eq) &&
        (gt === undefined || t > gt) &&
        (gte === undefined || t >= gte) &&
        (lt === undefined || t < lt) &&
        (lte === undefined || t <= lte)
      );
    };
  }

  protected retrieve(p: Reader, kind: Kind, id: string, param: string, status: number): StripeObject {
    p.allow(['expand']);
    const expand = p.expand();
    const obj = this.mustGet(kind, id, param, status);
    if (expand.length) this.checkExpand(expand, EXPANDABLE[kind]);
    return this.expanded(obj, expand);
  }

  protected balanceTransaction(
    source: string,
    type: 'charge' | 'refund' | 'refund_failure',
    amount: number,
    currency: string,
    description: string | null,
  ): StripeObject {
    // Fees approximate Stripe's standard card pricing: 2.9% + 30 minor units (charges only).
    const fee = type === 'charge' ? Math.round(amount * 0.029) + (ZERO_DECIMAL.has(currency) ? 0 : 30) : 0;
    const created = this.seconds();
    const txn: StripeObject = {
      id: `txn_${randomBase62(24)}`,
      object: 'balance_transaction',
      amount,
      available_on: created + 2 * 24 * 3600,
      balance_type: 'payments',
      created,
      currency,
      description,
      exchange_rate: null,
      fee,
      fee_details: fee
        ? [
            {
              amount: fee,
              application: null,
              currency,
              description: 'Stripe processing fees',
              type: 'stripe_fee',
            },
          ]
        : [],
      net: amount - fee,
      reporting_category: type === 'refund_failure' ? 'refund_failure' : type,
      source,
      status: 'pending',
      type,
    };
    this.save('balance_transaction', txn);
    return txn;
  }

  // --- payment methods -------------------------------------------------------------------------

  /** A test id (`pm_card_visa`) or a PaymentMethod created earlier; unknown → 400 resource_missing. */
  protected resolvePaymentMethod(id: string | undefined): { testCard: string } | StripeObject | undefined {
    if (!id) return undefined;
    if (Object.hasOwn(TEST_PAYMENT_METHODS, id)) return { testCard: id };
    const pm = this.get('payment_method', id);
    if (!pm) throw noSuch('PaymentMethod', id, 'payment_method');
    return pm;
  }

  /** Test ids become a new PaymentMethod of their card, as on Stripe. */
  protected materialize(ref: { testCard: string } | StripeObject): StripeObject {
    if ('object' in ref) return ref;
    const card = TEST_PAYMENT_METHODS[ref.testCard] as TestCard;
    const year = new Date(this.now()).getUTCFullYear();
    const pm: StripeObject = {
      id: `pm_${randomBase62(24)}`,
      object: 'payment_method',
      allow_redisplay: 'unspecified',
      billing_details: { address: null, email: null, name: null, phone: null, tax_id: null },
      card: {
        brand: card.brand,
        checks: { address_line1_check: null, address_postal_code_check: null, cvc_check: 'unchecked' },
        country: card.country,
        display_brand: card.brand === 'amex' ? 'american_express' : card.brand,
        exp_month: 12,
        exp_year: year + 3,
        fingerprint: sha256(ref.testCard).slice(0, 16),
        funding: card.funding,
        generated_from: null,
        last4: card.last4,
        networks: { available: [card.brand], preferred: null },
        regulated_status: 'unregulated',
        three_d_secure_usage: { supported: true },
        wallet: null,
      },
      created: this.seconds(),
      customer: null,
      customer_account: null,
      livemode: false,
      metadata: {},
      type: 'card',
    };
    this.save('payment_method', pm, { testCard: ref.testCard });
    return pm;
  }

  // --- validation helpers ----------------------------------------------------------------------

  protected checkAmount(amount: number, currency: string, param: string): void {
    if (THREE_DECIMAL.has(currency) && amount % 10 !== 0) {
      throw invalid(
        `Invalid ${param}: amounts in ${currency.toUpperCase()} (a three-decimal currency) must end in 0.`,
        param,
        'parameter_invalid_integer',
      );
    }
    const min = MINIMUM_AMOUNT[currency];
    if (min !== undefined && amount < min) {
      throw invalid(
        `Amount must be at least ${formatMoney(min, currency)} ${currency}`,
        param,
        'amount_too_small',
      );
    }
    if (amount > MAXIMUM_AMOUNT) {
      throw invalid(
        `Amount must be no more than ${formatMoney(MAXIMUM_AMOUNT, currency)}`,
        param,
        'amount_too_large',
      );
    }
  }

  /**
   * `allowed_payment_method_types` (current API versions) or `payment_method_types` (older ones); the
   * simulator models cards only. `excluded_payment_method_types` may not exclude card.
   */
  protected paymentMethodTypes(p: Reader): { param: string; list: string[] } | undefined {
    const allowed = p.stringList('allowed_payment_method_types');
    const legacy = p.stringList('payment_method_types');
    const excluded = p.stringList('excluded_payment_method_types');
    if (allowed && legacy) {
      throw invalid(
        'You may only specify one of these parameters: allowed_payment_method_types, payment_method_types.',
        'payment_method_types',
        'parameters_exclusive',
      );
    }
    if (excluded?.includes('card')) {
      throw invalid(
        'The Stripe simulator supports card payments only; excluding card leaves no payment method type.',
        'excluded_payment_method_types',
      );
    }
    const list = allowed ?? legacy;
    if (!list) return undefined;
    const param = allowed ? 'allowed_payment_method_types' : 'payment_method_types';
    if (list.length === 0) throw invalid(`Invalid array: ${param} must not be empty`, param);
    const other = list.find((t) => t !== 'card');
    if (other) {
      throw invalid(
        `The payment method type "${other}" is not supported by the Stripe simulator (card only).`,
        param,
      );
    }
    return { param, list };
  }

  /** Confirming with automatic payment methods that may redirect needs a return_url (as on Stripe). */
  protected checkConfirmable(
    automatic: { enabled: boolean; allow_redirects: string } | null,
    returnUrl?: string,
  ): void {
    if (automatic?.enabled && automatic.allow_redirects !== 'never' && !returnUrl) {
      throw invalid(
        "This PaymentIntent is configured to accept payment methods enabled in your Dashboard. Because some of these payment methods might redirect your customer off of your page, you must provide a `return_url`. If you don't want to accept redirect-based payment methods, set `automatic_payment_methods[enabled]` to `true` and `automatic_payment_methods[allow_redirects]` to `never` when creating Setup Intents and Payment Intents.",
      );
    }
  }

  protected checkExpand(paths: string[], allowed: readonly string[]): void {
    for (const p of paths) {
      const top = p.split('.')[0] as string;
      if (!allowed.includes(top)) throw invalid(`This property cannot be expanded (${p}).`, 'expand');
    }
  }

  /** A copy of `obj` with the `expand` paths (dotted, e.g. `latest_charge.balance_transaction`) replaced by objects. */
  protected expanded(obj: StripeObject, paths: string[]): StripeObject {
    const out = clone(obj);
    for (const p of paths) {
      let node: Record<string, unknown> = out;
      for (const seg of p.split('.')) {
        const v = node[seg];
        if (typeof v === 'string') {
          const target = this.store.lookup(v);
          if (!target) break;
          node[seg] = clone(target);
        }
        const next = node[seg];
        if (!next || typeof next !== 'object') break;
        node = next as Record<string, unknown>;
      }
    }
    return out;
  }

  // --- storage ---------------------------------------------------------------------------------

  protected get(kind: Kind, id: string): StripeObject | undefined {
    const o = this.store.lookup(id);
    return o && o.object === kind ? o : undefined;
  }

  /** The simulator-only state of an object. */
  protected simOf(id: string): SimInfo | undefined {
    return this.store.simOf(id);
  }

  protected mustGet(kind: Kind, id: string, param: string, status: number): StripeObject {
    const o = this.get(kind, id);
    if (!o) throw noSuch(kind, id, param, status);
    return o;
  }

  protected save(kind: Kind, obj: StripeObject, sim?: SimInfo): void {
    this.store.save(kind, obj, sim);
    this.maybeCompact();
  }

  /** Compacts the journal soon if it holds enough dead lines. */
  protected maybeCompact(): void {
    if (this.compactScheduled || !this.store.wantsCompaction(this.compactMinLines)) return;
    this.compactScheduled = true;
    setImmediate(() => {
      this.compactScheduled = false;
      if (!this.running) return;
      try {
        this.compact();
      } catch (err) {
        this.log.error({ err }, 'stripe simulator: cannot compact the journal');
      }
    });
  }

  /** Rewrites the journal with the current objects, live idempotency keys and latest events. */
  protected compact(): void {
    this.store.compact();
  }

  /**
   * Loads the journal: from its index snapshot and the lines after it (a clean stop leaves none),
   * or whole (no snapshot of it: a crash during a compaction, a journal from before), then compacted.
   */
  protected load(): void {
    this.loaded = true;
    const { fullScan } = this.store.load();
    if (fullScan || this.store.wantsCompaction(this.compactMinLines)) this.compact();
  }

  // --- events ----------------------------------------------------------------------------------

  protected internalContext(): RequestContext {
    return { requestId: '', idempotencyKey: null, apiVersion: DEFAULT_API_VERSION, events: [] };
  }

  protected emit(ctx: RequestContext, type: StripeEventType, obj: StripeObject): void {
    const event: StripeEvent = {
      id: `evt_${randomBase62(24)}`,
      object: 'event',
      api_version: ctx.apiVersion,
      created: this.seconds(),
      data: { object: clone(obj) },
      livemode: false,
      pending_webhooks: 0,
      request: { id: ctx.requestId || null, idempotency_key: ctx.idempotencyKey },
      type,
    };
    this.store.addEvent(event);
    this.maybeCompact();
    ctx.events.push(event);
  }

  protected dispatch(events: StripeEvent[]): void {
    if (!this.onEvent || events.length === 0) return;
    const hook = this.onEvent;
    setImmediate(() => {
      for (const e of events) {
        Promise.resolve()
          .then(() => hook(clone(e)))
          .catch((err: unknown) =>
            this.log.warn({ err, event: e.id, type: e.type }, 'stripe simulator: onEvent failed'),
          );
      }
    });
  }

  protected seconds(): number {
    return Math.floor(this.now() / 1000);
  }
}
