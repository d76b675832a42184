/**
 * A local Adyen: an HTTP server speaking the part of Adyen's Checkout API (v72, what
 * `@adyen/api-library` 32.1.0 calls) and Disputes API (v30) that paystep uses, so the library is
 * the client with only its transport changed (a `ClientInterface` that sends the library's request
 * to this server: `https://checkout-test.adyen.com/v72/…` → `<base>/v72/…`,
 * `https://ca-test.adyen.com/ca/services/DisputeService/v30/…` → `<base>/ca/services/…`).
 *
 * - Payments (payments.ts), modifications (modifications.ts), disputes (disputes.ts), the
 *   settlement details report (settlement.ts), signed notifications (notifications.ts) with
 *   Adyen's retry schedule, test cards and test values (test-cards.ts), faults (faults.ts).
 * - Requests: JSON, `X-API-Key` (401 without; with the `apiKey` option only those keys), the
 *   merchant account must be one of `merchantAccount` (403 `901` otherwise). Errors in Adyen's
 *   shape `{status, errorCode, message, errorType, pspReference}`; every response has a
 *   `pspReference` header. `/v71/…` and `/checkout/v72/…` are served as `/v72/…`.
 * - Idempotency: `Idempotency-Key` (at most 64 characters) on POST: the first 2xx answer is stored
 *   and replayed for the same key and body (with the `Idempotency-Key` header); the same key with
 *   another body, or while the first request still runs, answers 422 `704`. Keys are per API key.
 * - Durability: with `dataDir`, every object, idempotency record, pending notification delivery and
 *   timer is journaled in `<dataDir>/processors/adyen.jsonl` before the response, and reloaded
 *   (then compacted) by the first `start()`.
 *
 * Simulator routes (no auth; 127.0.0.1 only): `GET|POST|DELETE /_sim/faults`, `GET /_sim/stats`,
 * `GET /_sim/notifications`, `POST|DELETE /_sim/notifications/controls`, `GET /_sim/payments/:psp`,
 * `POST /_sim/payments/:psp/resolve` ({"outcome":"authorised"|"refused"}),
 * `POST /_sim/payments/:psp/dispute` ({"kind":"chargeback"|"rfi","reasonCode"?,"outcome"?}),
 * `GET /_sim/3ds/:token` (the shopper's page), `POST /_sim/3ds/:token` ({"outcome":"authenticated"|
 * "failed"|"cancelled"} → {redirectResult}), `GET /_sim/3ds/:token/complete?outcome=…` (302 to the
 * returnUrl with `redirectResult`), `GET /_sim/disputes/:psp`, `POST /_sim/disputes/:psp/close`
 * ({"outcome":"won"|"lost"}), `POST /_sim/settlement/close`, `GET /_sim/reports/<file>.csv`
 * (`?merchantAccount=`; also `GET /reports/download/MerchantAccount/:account/<file>` with the API key).
 * See docs/simulators.md.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger, type Logger } from '../../log.ts';
import type { DeliveryControls } from '../framework/delivery.ts';
import { Disputes } from './disputes.ts';
import { FaultController } from '../framework/faults.ts';
import {
  SimHttpServer,
  header,
  matchRoute,
  type HttpAnswer,
  type HttpReply,
  type HttpRequest,
  type Route,
} from '../framework/http.ts';
import {
  AdyenError,
  C,
  DEFAULT_DELAYS,
  errors,
  newPspReference,
  type AdyenDelays,
  type Json,
  type ModificationType,
  type SimContext,
  type Payment as AdyenPayment,
} from './model.ts';
import { Modifications } from './modifications.ts';
import {
  AdyenNotificationSender,
  type AdyenNotifyTarget,
  type NotificationRequestItem,
} from './notifications.ts';
import { Payments } from './payments.ts';
import { Settlement } from './settlement.ts';
import { DurableStore, DurableTimers } from '../framework/store.ts';
import { simRoutes } from './sim-routes.ts';

export interface AdyenSimulatorOptions {
  /** The notifications' HMAC key, hex (as Adyen's Customer Area shows it). */
  hmacKeyHex: string;
  /** The merchant account(s) requests may use. */
  merchantAccount: string | readonly string[];
  /** Accepted `X-API-Key` values (default: any non-empty key). */
  apiKey?: string | readonly string[];
  /** The settlement report's Company Account (default `PaystepCompany`). */
  companyAccount?: string;
  /** Journal under `<dataDir>/processors/adyen.jsonl` (default: memory only). */
  dataDir?: string;
  /** Where notifications go (default: nowhere; they are still made and listed). */
  notify?: AdyenNotifyTarget;
  notifyBasicAuth?: { username: string; password: string };
  /** Accept deliveries only when the body contains `[accepted]` (default true). */
  requireAcceptedBody?: boolean;
  /** Called with every notification item once made and signed (before delivery). */
  onNotification?: (item: NotificationRequestItem) => void;
  /** Test controls of notification delivery (duplicate, reorder, delay, drop). */
  notificationControls?: Partial<DeliveryControls>;
  /** Simulated time runs this many times faster (delays, retries, batches; default 1). */
  timeScale?: number;
  /** Simulated-time delays (see AdyenDelays). */
  delays?: Partial<AdyenDelays>;
  /** The merchant account's capture setting (default immediate). */
  captureMode?: 'immediate' | 'manual';
  multiplePartialCaptures?: boolean;
  notifyAutomaticCaptures?: boolean;
  /** A settlement batch closes every N ms of simulated time (default a day; 0: only on request). */
  settlementEveryMs?: number;
  logger?: Logger;
  now?: () => number;
  random?: () => number;
}

export interface AdyenSimulatorStats {
  requests: number;
  payments: number;
  modifications: number;
  disputes: number;
  idempotentReplays: number;
  faults: Record<string, number>;
  notifications: ReturnType<AdyenNotificationSender['stats']>;
}

interface IdempotencyRecord {
  fingerprint: string;
  status: number;
  body: unknown;
  createdAt: number;
}

type ApiHandler = (body: Json, params: string[]) => Json;

interface ApiRoute {
  method: string;
  pattern: RegExp;
  handler: ApiHandler;
}

const API_PREFIX = /^\/(?:checkout\/)?v7[12](?=\/)/;
const DISPUTES_PREFIX = '/ca/services/DisputeService/v30';
const IDEMPOTENCY_TTL_MS = 31 * 24 * 3600 * 1000;

export class AdyenSimulator {
  readonly faults: FaultController;
  readonly notifications: AdyenNotificationSender;
  readonly payments: Payments;
  readonly modifications: Modifications;
  readonly disputes: Disputes;
  readonly settlement: Settlement;
  private readonly opts: AdyenSimulatorOptions;
  private readonly store: DurableStore;
  private readonly timers: DurableTimers;
  private readonly server: SimHttpServer;
  private readonly log: Logger;
  private readonly merchantAccounts: readonly string[];
  private readonly apiRoutes: ApiRoute[];
  private readonly sim: Route[];
  private readonly inFlight = new Set<string>();
  private batchTimer?: NodeJS.Timeout;
  private counters = { requests: 0, idempotentReplays: 0 };

  constructor(opts: AdyenSimulatorOptions) {
    this.opts = opts;
    this.log = opts.logger ?? createLogger('adyen-simulator');
    this.merchantAccounts =
      typeof opts.merchantAccount === 'string' ? [opts.merchantAccount] : opts.merchantAccount;
    if (!this.merchantAccounts.length) throw new TypeError('merchantAccount is required');
    const now = opts.now ?? Date.now;
    // What grows with history lives on disk (an index entry each in memory); disputes, batches,
    // counters, timers and pending notifications stay resident (framework/store.ts).
    this.store = new DurableStore(
      opts.dataDir ? path.join(opts.dataDir, 'processors', 'adyen.jsonl') : undefined,
      { onDisk: [C.payment, C.modification, C.idempotency, C.redirect, C.storedMethod, C.entry] },
    );
    this.timers = new DurableTimers({ store: this.store, logger: this.log, now, timeScale: opts.timeScale });
    this.faults = new FaultController(opts.random);
    this.faults.onChange = () => void this.server.refuse(this.faults.refusesConnections());
    this.notifications = new AdyenNotificationSender({
      store: this.store,
      logger: this.log,
      hmacKeyHex: opts.hmacKeyHex,
      target: opts.notify,
      basicAuth: opts.notifyBasicAuth,
      requireAcceptedBody: opts.requireAcceptedBody,
      timeScale: opts.timeScale,
      controls: opts.notificationControls,
      onItem: opts.onNotification,
      now,
      random: opts.random,
    });
    this.server = new SimHttpServer({
      name: 'adyen simulator',
      logger: this.log,
      handle: (req) => this.handle(req),
      onError: () => this.error(errors.internal()),
    });
    const ctx: SimContext = {
      store: this.store,
      timers: this.timers,
      logger: this.log,
      now,
      baseUrl: () => this.server.url,
      newPsp: () => newPspReference((p) => this.store.has(C.payment, p) || this.store.has(C.modification, p)),
      notify: (item) => {
        this.notifications.send(item);
      },
      delays: { ...DEFAULT_DELAYS, ...(opts.delays ?? {}) },
      merchantAccounts: this.merchantAccounts,
    };
    this.settlement = new Settlement(ctx, opts.companyAccount ?? 'PaystepCompany');
    this.disputes = new Disputes(ctx, this.settlement);
    this.modifications = new Modifications(ctx, this.settlement, this.disputes, {
      multiplePartialCaptures: opts.multiplePartialCaptures,
      notifyAutomaticCaptures: opts.notifyAutomaticCaptures,
    });
    this.payments = new Payments(ctx, this.modifications, { captureMode: opts.captureMode });
    this.apiRoutes = this.buildApiRoutes();
    this.sim = simRoutes(this);
  }

  /** The base URL once started ('' before). */
  get url(): string {
    return this.server.url;
  }

  /**
   * Where paystep's connector sends its requests (the API door): the same routes as `url`, but a
   * `down` fault at rate 1 closes it, so connections are refused. '' before `start`.
   */
  get apiUrl(): string {
    return this.server.doorUrl;
  }

  /** Resolves once the API door is open or closed as the faults say. */
  doorSettled(): Promise<void> {
    return this.server.settled();
  }

  /**
   * Loads the journal (first start only), listens on 127.0.0.1:`port` (and its API door on
   * `apiPort`) and returns the base URL.
   */
  async start(port = 0, apiPort = 0): Promise<string> {
    if (this.server.listening) return this.server.url;
    this.store.load();
    const url = await this.server.start(port);
    await this.server.openDoor(apiPort);
    await this.server.refuse(this.faults.refusesConnections());
    this.timers.resume();
    this.notifications.resume();
    const every = this.opts.settlementEveryMs ?? 24 * 3600 * 1000;
    if (every > 0) {
      this.batchTimer = setInterval(() => this.settleBatch(), every / (this.opts.timeScale ?? 1));
      this.batchTimer.unref();
    }
    this.log.info({ url }, 'adyen simulator listening');
    return url;
  }

  /** Stops listening (hung requests dropped), timers and deliveries; state stays journaled. */
  async stop(): Promise<void> {
    if (this.batchTimer) clearInterval(this.batchTimer);
    this.batchTimer = undefined;
    await this.server.stop();
    await this.timers.stop();
    await this.notifications.stop();
    this.store.close();
  }

  /** Closes the settlement batch (per merchant account) of everything not yet batched. */
  settleBatch(): { merchantAccount: string; number: number; file: string; url: string; csv: string }[] {
    return this.settlement.closeBatch().map((b) => ({
      ...b,
      url: `${this.url}/_sim/reports/${b.file}?merchantAccount=${encodeURIComponent(b.merchantAccount)}`,
      csv: this.settlement.csv(b.merchantAccount, b.number) ?? '',
    }));
  }

  /** The report of batch `n` (first merchant account by default). */
  settlementReport(n: number, merchantAccount = this.merchantAccounts[0]!): string | undefined {
    return this.settlement.csv(merchantAccount, n);
  }

  /** Notification items made so far (at most the latest 1000), delivered or not. */
  notificationItems(): NotificationRequestItem[] {
    return this.notifications.items();
  }

  /** Resolves when no timer (outcome, dispute stage…) is pending. */
  settled(): Promise<void> {
    return this.timers.idle();
  }

  /** What the store holds in memory (index entries, resident and cached objects) and its journal lines. */
  memoryStats(): { indexed: number; resident: number; cached: number; journalLines: number } {
    return this.store.memoryStats();
  }

  stats(): AdyenSimulatorStats {
    return {
      ...this.counters,
      payments: this.store.count(C.payment),
      modifications: this.store.count(C.modification),
      disputes: this.store.count(C.dispute),
      faults: { ...this.faults.affected },
      notifications: this.notifications.stats(),
    };
  }

  // --- HTTP ------------------------------------------------------------------------------------

  private buildApiRoutes(): ApiRoute[] {
    const mod = (type: ModificationType) => (b: Json, params: string[]) =>
      this.modifications.request(type, params[0]!, b);
    const routes: [string, ApiHandler][] = [
      ['/v72/payments', (b) => this.payments.create(b)],
      ['/v72/payments/details', (b) => this.payments.details(b)],
      ['/v72/payments/([^/]+)/captures', mod('capture')],
      ['/v72/payments/([^/]+)/cancels', mod('cancel')],
      ['/v72/payments/([^/]+)/refunds', mod('refund')],
      ['/v72/payments/([^/]+)/reversals', mod('reversal')],
      ['/v72/cancels', (b) => this.standaloneCancel(b)],
      [`${DISPUTES_PREFIX}/acceptDispute`, (b) => this.disputes.accept(b)],
      [`${DISPUTES_PREFIX}/defendDispute`, (b) => this.disputes.defend(b)],
      [`${DISPUTES_PREFIX}/deleteDisputeDefenseDocument`, (b) => this.disputes.deleteDocument(b)],
      [`${DISPUTES_PREFIX}/retrieveApplicableDefenseReasons`, (b) => this.disputes.defenseReasons(b)],
      [`${DISPUTES_PREFIX}/supplyDefenseDocument`, (b) => this.disputes.supplyDocuments(b)],
    ];
    return routes.map(([re, handler]) => ({ method: 'POST', pattern: new RegExp(`^${re}$`), handler }));
  }

  /** Every payment the simulator holds (for benchmarks and tests: what Adyen itself would show). */
  paymentRecords(): Pick<AdyenPayment, 'pspReference' | 'merchantReference' | 'status' | 'capturedValue'>[] {
    return this.store
      .all<AdyenPayment>(C.payment)
      .map(({ pspReference, merchantReference, status, capturedValue }) => ({
        pspReference,
        merchantReference,
        status,
        capturedValue,
      }));
  }

  /** POST /cancels: cancels the payment whose merchant reference is `paymentReference`. */
  private standaloneCancel(body: Json): Json {
    const ref = body.paymentReference;
    if (typeof ref !== 'string' || !ref) throw errors.required('paymentReference');
    const payment = this.store
      .all<{ pspReference: string; merchantReference: string }>(C.payment)
      .find((p) => p.merchantReference === ref);
    if (!payment) throw errors.noOriginal();
    const out = this.modifications.request('cancel', payment.pspReference, body);
    return {
      merchantAccount: out.merchantAccount,
      paymentReference: ref,
      pspReference: out.pspReference,
      ...(body.reference ? { reference: body.reference } : {}),
      status: 'received',
    };
  }

  private error(e: AdyenError, psp = newPspReference(() => false)): HttpAnswer {
    return { status: e.status, json: e.body(psp), headers: { pspReference: psp } };
  }

  private apiKeyOf(req: HttpRequest): string | undefined {
    const key = header(req.headers, 'x-api-key');
    if (!key) return undefined;
    const allowed = this.opts.apiKey;
    if (allowed === undefined) return key;
    const list = typeof allowed === 'string' ? [allowed] : allowed;
    return list.includes(key) ? key : undefined;
  }

  private async handle(req: HttpRequest): Promise<HttpReply> {
    if (req.path.startsWith('/_sim/')) {
      const m = matchRoute(this.sim, req.method, req.path);
      if (m.kind === 'found') return m.route.handler(req, m.params);
      return {
        status: m.kind === 'not-found' ? 404 : 405,
        json: { error: `no simulator route ${req.method} ${req.path}` },
      };
    }
    this.counters.requests++;
    const decision = this.faults.take(`${req.method} ${req.path}`);
    if (decision.kind === 'down') return { destroy: true };
    if (decision.kind === 'error') return this.error(errors.internal());
    if (decision.kind === 'slow') await sleep(decision.latencyMs);
    const reply = await this.api(req);
    if (decision.kind === 'timeout-after-processing') {
      if (decision.answerAfterMs === undefined) return { hang: true };
      await sleep(decision.answerAfterMs);
    }
    return reply;
  }

  private async api(req: HttpRequest): Promise<HttpReply> {
    const apiKey = this.apiKeyOf(req);
    if (!apiKey) return this.error(errors.unauthorised());
    const report =
      /^\/reports\/download\/MerchantAccount\/([^/]+)\/settlement_detail_report_batch_(\d+)\.csv$/.exec(
        req.path,
      );
    if (report && req.method === 'GET') {
      const csv = this.settlement.csv(decodeURIComponent(report[1]!), Number(report[2]));
      return csv === undefined
        ? { status: 404, text: 'Not Found' }
        : { status: 200, text: csv, contentType: 'text/csv' };
    }
    const normalized = req.path.replace(API_PREFIX, '/v72');
    const m = matchRoute(this.apiRoutes, req.method, normalized);
    if (m.kind !== 'found')
      return this.error(
        new AdyenError(
          m.kind === 'not-found' ? 404 : 405,
          '000',
          m.kind === 'not-found' ? 'Not Found' : 'Method Not Allowed',
          'validation',
        ),
      );
    let body: Json;
    try {
      const parsed: unknown = req.body ? JSON.parse(req.body) : {};
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
        throw new Error('not an object');
      body = parsed as Json;
    } catch {
      return this.error(errors.unparsable());
    }
    const handler = m.route.handler;
    const key = header(req.headers, 'idempotency-key');
    if (!key) return this.run(handler, body, m.params);
    if (key.length > 64)
      return this.error(
        new AdyenError(422, '000', 'Idempotency-Key is longer than 64 characters', 'validation'),
      );
    const scope = `${createHash('sha256').update(apiKey).digest('hex').slice(0, 16)}:${key}`;
    const fingerprint = createHash('sha256')
      .update(`${req.method} ${normalized} ${stableStringify(body)}`)
      .digest('hex');
    const prior = this.store.get<IdempotencyRecord>(C.idempotency, scope);
    if (prior && this.now() - prior.createdAt > IDEMPOTENCY_TTL_MS) this.store.delete(C.idempotency, scope);
    const stored = this.store.get<IdempotencyRecord>(C.idempotency, scope);
    if (this.inFlight.has(scope)) return this.error(errors.inProgress());
    if (stored) {
      if (stored.fingerprint !== fingerprint)
        return this.error(
          new AdyenError(422, '704', 'Idempotency-Key already used for a different request', 'validation'),
        );
      this.counters.idempotentReplays++;
      const psp = (stored.body as { pspReference?: string }).pspReference ?? '';
      return {
        status: stored.status,
        json: stored.body,
        headers: { pspReference: psp, 'Idempotency-Key': key },
      };
    }
    this.inFlight.add(scope);
    try {
      const reply = this.run(handler, body, m.params);
      if (reply.status >= 200 && reply.status < 300)
        this.store.put<IdempotencyRecord>(C.idempotency, scope, {
          fingerprint,
          status: reply.status,
          body: reply.json,
          createdAt: this.now(),
        });
      reply.headers = { ...(reply.headers ?? {}), 'Idempotency-Key': key };
      return reply;
    } finally {
      this.inFlight.delete(scope);
    }
  }

  private run(handler: ApiHandler, body: Json, params: string[]): HttpAnswer {
    try {
      const out = handler(body, params);
      const psp = typeof out.pspReference === 'string' ? out.pspReference : '';
      return { status: 200, json: out, headers: { pspReference: psp } };
    } catch (err) {
      if (err instanceof AdyenError) return this.error(err);
      throw err;
    }
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }
}

function stableStringify(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(',')}]`;
  if (v && typeof v === 'object')
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableStringify((v as Json)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v) ?? 'null';
}
