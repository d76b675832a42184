/**
 * A local Stripe: an HTTP server speaking the part of Stripe's API that paystep uses, so the real
 * `stripe` SDK is the client (`new Stripe(key, { host: '127.0.0.1', port, protocol: 'http' })`).
 *
 * What it models (docs.stripe.com/api, /testing, /idempotency, /error-handling):
 * - PaymentIntents: create (with `confirm`), retrieve, confirm, capture (partial capture releases the
 *   rest), cancel; Charges, Refunds, PaymentMethods and BalanceTransactions as they result from them.
 *   Statuses, amounts and error bodies are Stripe's; a declined confirm answers 402 AND leaves the
 *   PaymentIntent in `requires_payment_method` with `last_payment_error`, as Stripe does.
 * - Stripe's documented test PaymentMethod ids (`pm_card_visa`, `pm_card_visa_chargeDeclinedInsufficientFunds`,
 *   `pm_card_authenticationRequired`, `pm_card_createDispute`, `pm_card_gb`, …; see TEST_PAYMENT_METHODS).
 *   As on Stripe, using one creates a new PaymentMethod (`pm_…`) from that test card.
 * - Requests: form-encoded bodies with Stripe's bracket notation, `Authorization: Bearer sk_test_…`
 *   (or Basic, as curl -u sends it), unknown parameters refused (`parameter_unknown`), `expand[]`.
 * - Idempotency (v1 semantics): the first response of a key is stored once the endpoint starts executing
 *   (including a 402 decline) and replayed for the same key and parameters with
 *   `Idempotent-Replayed: true`; other parameters or another endpoint → 400 `idempotency_error`; the same
 *   key while the first request is still executing → 409 `idempotency_error`. Keys are scoped per API key
 *   and kept 24 hours. Requests that fail parameter validation store nothing (as Stripe).
 * - Faults for failover and retry tests (`faults`, or `POST /_sim/faults`): latency, 5xx, 429,
 *   dropped connections (`downRate`) and timeouts. A 5xx or 429 fault is answered before the endpoint runs: nothing happens and nothing is
 *   stored, so a retry with the same key executes normally (Stripe's "request never reached the API").
 *   A timeout fault runs the request, stores its idempotent result, then never answers: the caller
 *   cannot know the outcome, and its retry with the same key gets the stored result, not a second charge.
 * - Events: every state change produces a Stripe-shaped `event` (`evt_…`) passed to `onEvent` (the
 *   extension point for signed webhooks) and kept for `events()`.
 * - Durability: with `dataDir`, every object, idempotency record and event is appended to
 *   `${dataDir}/processors/stripe.jsonl` before the response is sent; memory keeps an index of them
 *   and the records last used (storage.ts), and `start()` reloads the index (from the snapshot a
 *   clean `stop()` writes, or from the journal).
 *
 * - Payouts (finance, issue 5): `createPayout()` (or `POST /_sim/payouts/run`, `{"include_pending":true}`
 *   to pay out funds not yet available) pays the balance out, one automatic payout per currency, as
 *   Stripe's daily schedule does (every `payoutEveryMs`, default a day; `PAYSTEP_STRIPE_PAYOUT_EVERY_SECONDS`,
 *   0 turns it off). `GET /v1/payouts`, `GET /v1/payouts/:id`, `GET /v1/balance_transactions?payout=…`
 *   (with `expand[]=data.source`), and `GET /_sim/payouts/:id/itemized.csv`: the payout's itemized
 *   payout reconciliation report, as Stripe's Dashboard downloads it.
 *
 * Simulator-only routes (no auth; the server listens on 127.0.0.1): `GET|POST|DELETE /_sim/faults`,
 * `GET /_sim/stats`, `POST /_sim/payment_intents/:id/authenticate` ({"outcome":"succeed"|"fail"}),
 * `GET /_sim/3ds/:id` (the page a 3-D Secure `next_action` points at), `POST /_sim/refunds/settle`,
 * `POST /_sim/disputes/:id/close` ({"outcome":"won"|"lost"}), `GET|POST /_sim/disputes/settings` (the
 * dispute timing of `configureDisputes()`, e.g. `{"responseWindowSeconds":259200}` for demos).
 *
 * - Disputes: `pm_card_createDispute*` charges are disputed after a delay (`disputes.createDelayMs`);
 *   GET/POST /v1/disputes/:id (evidence, submit) and POST /v1/disputes/:id/close; Stripe's evidence
 *   test strings decide them (disputes.ts).
 *
 * Layout (docs/simulators.md, "Code layout"): one file per resource, each a layer of the class
 * (core.ts → payouts.ts → refunds.ts → disputes.ts → payment-intents.ts → this file); HTTP through
 * the shared simulator server (../framework/http.ts); fault decisions by the shared fault controls
 * (../framework/faults.ts) behind Stripe's own fault fields (faults.ts).
 *
 * - Lists and the balance: GET /v1/refunds, /v1/disputes, /v1/payouts, /v1/balance_transactions,
 *   /v1/balance.
 * - Errors carry `Stripe-Should-Retry` (false on 4xx and on a 500 of an executed request, which is
 *   stored and replayed for its key; true on 409 and on a 500 answered before the API ran), codes
 *   from Stripe's list only; docs/simulators.md lists what is checked against Stripe's schemas.
 *
 * Not modelled: customers, SetupIntents, other lists and search,
 * other payment method types, Connect, currencies conversion, signed webhook delivery.
 */
import { randomBase62 } from '../../../../lambdas/shared/ids.ts';
import { SimHttpServer, header, type HttpReply, type HttpRequest } from '../framework/http.ts';
import { SimError, invalid, docUrl, shouldRetry, type StripeErrorBody } from './errors.ts';
import { Reader, parseStripeForm } from './form.ts';
import { formatMoney } from './money.ts';
import {
  DEFAULT_API_VERSION,
  sha256,
  sleep,
  stableStringify,
  type IdempotencyRecord,
  type RequestContext,
  type Route,
} from './model.ts';
import type { DisputeSettings, StripeFaults, StripeSimulatorOptions } from './types.ts';
import { StripePaymentIntents } from './payment-intents.ts';

export class StripeSimulator extends StripePaymentIntents {
  private readonly routes: Route[];
  /** The shared simulator HTTP server (lib/local/processors/framework/http.ts). */
  private readonly http: SimHttpServer;

  constructor(options: StripeSimulatorOptions = {}) {
    super(options);
    this.http = new SimHttpServer({
      name: 'stripe simulator',
      logger: this.log,
      handle: (req) => this.handle(req),
      onError: () => this.reply(500, { error: this.apiError() }, {}),
    });
    this.faults.onChange = () => void this.http.refuse(this.faults.refusesConnections());
    const PI = 'payment_intents/([^/]+)';
    this.routes = [
      {
        method: 'POST',
        pattern: /^\/v1\/payment_intents$/,
        handler: (p, c) => this.createPaymentIntent(p, c),
      },
      {
        method: 'GET',
        pattern: new RegExp(`^/v1/payment_intents/([^/]+)$`),
        handler: (p, _c, id) => this.retrieve(p, 'payment_intent', id, 'intent', 404),
      },
      {
        method: 'POST',
        pattern: new RegExp(`^/v1/${PI}/confirm$`),
        handler: (p, c, id) => this.confirmPaymentIntent(p, c, id),
      },
      {
        method: 'POST',
        pattern: new RegExp(`^/v1/${PI}/capture$`),
        handler: (p, c, id) => this.capturePaymentIntent(p, c, id),
      },
      {
        method: 'POST',
        pattern: new RegExp(`^/v1/${PI}/cancel$`),
        handler: (p, c, id) => this.cancelPaymentIntent(p, c, id),
      },
      { method: 'POST', pattern: /^\/v1\/refunds$/, handler: (p, c) => this.createRefund(p, c) },
      { method: 'GET', pattern: /^\/v1\/refunds$/, handler: (p) => this.listByPayment(p, 'refund') },
      { method: 'GET', pattern: /^\/v1\/disputes$/, handler: (p) => this.listByPayment(p, 'dispute') },
      { method: 'GET', pattern: /^\/v1\/balance$/, handler: (p) => this.balance(p) },
      {
        method: 'GET',
        pattern: /^\/v1\/refunds\/([^/]+)$/,
        handler: (p, _c, id) => this.retrieve(p, 'refund', id, 'id', 404),
      },
      {
        method: 'GET',
        pattern: /^\/v1\/charges\/([^/]+)$/,
        handler: (p, _c, id) => this.retrieve(p, 'charge', id, 'id', 404),
      },
      {
        method: 'GET',
        pattern: /^\/v1\/payment_methods\/([^/]+)$/,
        handler: (p, _c, id) => this.retrieve(p, 'payment_method', id, 'payment_method', 404),
      },
      {
        method: 'GET',
        pattern: /^\/v1\/balance_transactions\/([^/]+)$/,
        handler: (p, _c, id) => this.retrieve(p, 'balance_transaction', id, 'id', 404),
      },
      {
        method: 'GET',
        pattern: /^\/v1\/disputes\/([^/]+)$/,
        handler: (p, _c, id) => this.retrieve(p, 'dispute', id, 'dispute', 404),
      },
      {
        method: 'POST',
        pattern: /^\/v1\/disputes\/([^/]+)$/,
        handler: (p, c, id) => this.updateDispute(p, c, id),
      },
      {
        method: 'POST',
        pattern: /^\/v1\/disputes\/([^/]+)\/close$/,
        handler: (p, c, id) => this.closeDisputeEndpoint(p, c, id),
      },
      {
        method: 'GET',
        pattern: /^\/v1\/balance_transactions$/,
        handler: (p) => this.listBalanceTransactions(p),
      },
      { method: 'GET', pattern: /^\/v1\/payouts$/, handler: (p) => this.listPayouts(p) },
      {
        method: 'GET',
        pattern: /^\/v1\/payouts\/([^/]+)$/,
        handler: (p, _c, id) => this.retrieve(p, 'payout', id, 'payout', 404),
      },
    ];
  }

  // --- lifecycle -------------------------------------------------------------------------------

  /**
   * Loads the journal (first start only), listens on 127.0.0.1:`port` (and its API door on
   * `apiPort`) and returns the base URL.
   */
  async start(port = 0, apiPort = 0): Promise<string> {
    if (this.running) return this.baseUrl;
    if (!this.loaded) this.load();
    this.baseUrl = await this.http.start(port);
    await this.http.openDoor(apiPort);
    await this.http.refuse(this.faults.refusesConnections());
    this.running = true;
    for (const [id, info] of this.store.activeSim)
      if (info.transition) this.scheduleTransition(id, info.transition.at);
    this.resumeDisputeTimers();
    if (this.payoutEveryMs > 0) {
      const t = setInterval(() => this.createPayout(), this.payoutEveryMs);
      t.unref();
      this.timers.set('automatic-payouts', t);
    }
    this.log.info({ url: this.baseUrl }, 'stripe simulator listening');
    return this.baseUrl;
  }

  /** Stops listening, drops open connections (including requests hung by a timeout fault). */
  async stop(): Promise<void> {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.running = false;
    await this.http.stop();
    this.store.close();
  }

  get url(): string {
    return this.baseUrl;
  }

  /**
   * Where paystep's connector sends its requests (the API door): the same routes as `url`, but
   * `downRate` 1 (without `match`) closes it, so connections are refused. '' before `start`.
   */
  get apiUrl(): string {
    return this.http.doorUrl;
  }

  /** Resolves once the API door is open or closed as the faults say. */
  doorSettled(): Promise<void> {
    return this.http.settled();
  }

  // --- HTTP ------------------------------------------------------------------------------------

  protected async handle(req: HttpRequest): Promise<HttpReply> {
    const started = Date.now();
    const { url, method, body } = req;
    if (url.pathname.startsWith('/_sim/')) {
      const reply = this.handleSim(method, url, body);
      await this.http.settled(); // a fault change has opened or closed the API door
      return reply;
    }

    this.counters.requests++;
    const requestId = `req_${randomBase62(14)}`;
    const apiVersion = header(req.headers, 'stripe-version') ?? DEFAULT_API_VERSION;
    const idempotencyKey = method === 'POST' ? (header(req.headers, 'idempotency-key') ?? null) : null;
    const headers: Record<string, string> = { 'Request-Id': requestId, 'Stripe-Version': apiVersion };
    if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;
    const done = (status: number, payload: unknown, extra: Record<string, string> = {}): HttpReply => {
      this.log.debug(
        { method, path: url.pathname, status, ms: Date.now() - started },
        'stripe simulator request',
      );
      return this.reply(status, payload, { ...headers, ...extra });
    };
    const fail = (e: SimError) =>
      done(e.status, { error: this.withLogUrl(e.body, requestId) }, shouldRetry(e.status, false));

    // Authentication comes first, as on Stripe.
    const apiKey = this.apiKey(req);
    if (apiKey instanceof SimError) return fail(apiKey);

    const match = this.route(method, url.pathname);
    if (!match) {
      return fail(
        new SimError(404, {
          type: 'invalid_request_error',
          message: `Unrecognized request URL (${method}: ${url.pathname}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`,
        }),
      );
    }

    // Faults answered before the API runs: nothing happens, nothing is stored.
    const { latencyMs, fault } = this.faults.take(`${method} ${url.pathname}`);
    if (fault === 'down') {
      // Unreachable: the connection ends without an answer (the SDK sees a connection error).
      if (latencyMs) await sleep(latencyMs);
      this.log.debug({ method, path: url.pathname }, 'stripe simulator: down fault, dropping the connection');
      return { destroy: true };
    }
    if (fault === 'rate_limit' || fault === 'error') {
      if (latencyMs) await sleep(latencyMs);
      if (fault === 'rate_limit') {
        return fail(
          new SimError(429, {
            type: 'invalid_request_error',
            code: 'rate_limit',
            doc_url: docUrl('rate_limit'),
            message:
              'Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.',
          }),
        );
      }
      // Nothing ran and nothing is stored: a retry may succeed.
      return done(500, { error: this.apiError(requestId) }, shouldRetry(500, false));
    }

    let reader: Reader;
    try {
      const raw = method === 'GET' ? url.search.slice(1) : body;
      reader = new Reader(parseStripeForm(raw));
    } catch {
      return fail(invalid('Invalid request body.'));
    }

    // Idempotency: replay, conflict, or claim the key while the request executes.
    let scope: string | undefined;
    const endpoint = `${method} ${url.pathname}`;
    const paramsHash = sha256(stableStringify(reader.params));
    if (idempotencyKey) {
      if (idempotencyKey.length > 255) {
        return fail(invalid('Idempotency key is too long. It must be at most 255 characters.', undefined));
      }
      scope = `${sha256(apiKey).slice(0, 16)}:${idempotencyKey}`;
      // A record older than 24 hours is gone, as on Stripe.
      const stored = this.store.idempotency(scope);
      if (this.inFlight.has(scope)) {
        return fail(
          new SimError(409, {
            type: 'idempotency_error',
            code: 'idempotency_key_in_use',
            doc_url: docUrl('idempotency_key_in_use'),
            message: `There is currently another in-progress request using this idempotent key (that probably means you submitted twice, and the other request is still going through): ${idempotencyKey}. Please try again later.`,
          }),
        );
      }
      if (stored) {
        if (stored.endpoint !== endpoint) {
          return fail(
            new SimError(400, {
              type: 'idempotency_error',
              message: `Keys for idempotent requests can only be used for the same endpoint they were first used for ('${stored.endpoint}' vs '${endpoint}'). Try using a key other than '${idempotencyKey}' if you meant to execute a different request.`,
            }),
          );
        }
        if (stored.paramsHash !== paramsHash) {
          return fail(
            new SimError(400, {
              type: 'idempotency_error',
              message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idempotencyKey}' if you meant to execute a different request.`,
            }),
          );
        }
        // A timeout fault leaves a replay unanswered too: the caller still cannot learn the outcome.
        if (fault === 'timeout-after-processing') return { hang: true };
        this.log.debug(
          { method, path: url.pathname, status: stored.status, replayed: true },
          'stripe simulator request',
        );
        return this.reply(stored.status, stored.body, {
          ...headers,
          ...shouldRetry(stored.status, true),
          'Idempotent-Replayed': 'true',
          'Original-Request': stored.requestId,
        });
      }
      this.inFlight.add(scope);
    }

    // Execute. The handler is synchronous: requests cannot interleave inside it.
    let status: number;
    let payload: unknown;
    const ctx: RequestContext = { requestId, idempotencyKey, apiVersion, events: [] };
    let store = false;
    try {
      if (latencyMs) await sleep(latencyMs);
      // An API failure once the request started executing: stored like any executed result.
      if (fault === 'fail_stored') throw new Error('simulated API failure while executing');
      try {
        payload = match.route.handler(reader, ctx, match.id);
        status = 200;
        store = true;
      } catch (err) {
        if (!(err instanceof SimError)) throw err;
        status = err.status;
        payload = { error: this.withLogUrl(err.body, requestId) };
        store = err.stored;
      }
    } catch (err) {
      if (fault !== 'fail_stored')
        this.log.error({ err, method, path: url.pathname }, 'stripe simulator: handler failed');
      status = 500;
      payload = { error: this.apiError(requestId) };
      // Stripe keeps a 500 of an endpoint that had started executing, and replays it for the key.
      store = true;
    } finally {
      if (scope) this.inFlight.delete(scope);
    }
    const text = JSON.stringify(payload, null, 2);
    if (scope && store) {
      const rec: IdempotencyRecord = {
        endpoint,
        paramsHash,
        status,
        body: text,
        requestId,
        createdMs: this.now(),
      };
      this.store.putIdempotency(scope, rec);
      this.maybeCompact();
    }
    this.dispatch(ctx.events);

    if (fault === 'timeout-after-processing') {
      // The effect happened and is stored; the caller never hears about it.
      this.log.debug({ method, path: url.pathname }, 'stripe simulator: timeout fault, not answering');
      return { hang: true };
    }
    this.log.debug(
      { method, path: url.pathname, status, ms: Date.now() - started },
      'stripe simulator request',
    );
    return this.reply(status, text, {
      ...headers,
      ...shouldRetry(status, true),
      ...(idempotencyKey ? { 'Original-Request': requestId } : {}),
    });
  }

  protected handleSim(method: string, url: URL, body: string): HttpReply {
    const json = (status: number, payload: unknown) => this.reply(status, payload, {});
    const parseBody = (): Record<string, unknown> => {
      if (!body.trim()) return Object.fromEntries(url.searchParams);
      if (body.trim().startsWith('{')) return JSON.parse(body) as Record<string, unknown>;
      return Object.fromEntries(new URLSearchParams(body));
    };
    try {
      const p = url.pathname;
      if (p === '/_sim/faults') {
        if (method === 'GET') return json(200, this.faults.get());
        if (method === 'DELETE') {
          this.faults.reset();
          return json(200, this.faults.get());
        }
        if (method === 'POST') {
          const b = parseBody();
          const f: Record<string, unknown> = {};
          for (const [k, v] of Object.entries(b))
            f[k] = k === 'match' || typeof v !== 'string' ? v : Number(v);
          return json(200, this.faults.set(f as StripeFaults));
        }
      }
      if (p === '/_sim/stats' && method === 'GET') return json(200, this.stats());
      if (p === '/_sim/payouts/run' && method === 'POST') {
        const b = parseBody();
        const includePending = b.include_pending === true || b.include_pending === 'true';
        const currency = typeof b.currency === 'string' ? b.currency : undefined;
        return json(200, { payouts: this.createPayout({ includePending, currency }) });
      }
      const itemized = /^\/_sim\/payouts\/([^/]+)\/itemized\.csv$/.exec(p);
      if (itemized && method === 'GET') {
        const csv = this.payoutItemizedCsv(itemized[1] as string);
        return { status: 200, text: csv, contentType: 'text/csv; charset=utf-8' };
      }
      if (p === '/_sim/refunds/settle' && method === 'POST')
        return json(200, { refunds: this.settleAsyncRefunds() });
      if (p === '/_sim/disputes/settings') {
        if (method === 'GET') return json(200, this.configureDisputes());
        if (method === 'POST') {
          const b = parseBody();
          const s: Record<string, unknown> = {};
          for (const [k, v] of Object.entries(b)) s[k] = typeof v === 'string' ? Number(v) : v;
          return json(200, this.configureDisputes(s as Partial<DisputeSettings>));
        }
      }
      const disputeClose = /^\/_sim\/disputes\/([^/]+)\/close$/.exec(p);
      if (disputeClose && method === 'POST') {
        const outcome = parseBody().outcome === 'lost' ? 'lost' : 'won';
        return json(200, this.closeDispute(disputeClose[1] as string, outcome));
      }
      const auth = /^\/_sim\/payment_intents\/([^/]+)\/authenticate$/.exec(p);
      if (auth && method === 'POST') {
        const b = parseBody();
        const outcome = b.outcome === 'fail' ? 'fail' : 'succeed';
        const pi = this.authenticate(auth[1] as string, outcome);
        const returnUrl = this.simOf(pi.id)?.returnUrl;
        if (b.redirect && returnUrl) {
          const target = new URL(returnUrl);
          target.searchParams.set('payment_intent', pi.id);
          target.searchParams.set('payment_intent_client_secret', String(pi.client_secret));
          target.searchParams.set('redirect_status', outcome === 'succeed' ? 'succeeded' : 'failed');
          return { status: 303, text: '', headers: { Location: target.toString() } };
        }
        return json(200, pi);
      }
      const page = /^\/_sim\/3ds\/([^/]+)$/.exec(p);
      if (page && method === 'GET') {
        const id = page[1] as string;
        const pi = this.get('payment_intent', id);
        if (!pi) return json(404, { error: 'no such payment_intent' });
        const action = `/_sim/payment_intents/${encodeURIComponent(id)}/authenticate`;
        const html =
          `<!doctype html><meta charset="utf-8"><title>3-D Secure (simulated)</title>` +
          `<h1>3-D Secure authentication (Stripe simulator)</h1>` +
          `<p>PaymentIntent <code>${escapeHtml(id)}</code>: ${escapeHtml(formatMoney(pi.amount as number, pi.currency as string))}</p>` +
          `<form method="post" action="${action}"><input type="hidden" name="outcome" value="succeed"><input type="hidden" name="redirect" value="1"><button>Complete authentication</button></form>` +
          `<form method="post" action="${action}"><input type="hidden" name="outcome" value="fail"><input type="hidden" name="redirect" value="1"><button>Fail authentication</button></form>`;
        return { status: 200, text: html, contentType: 'text/html; charset=utf-8' };
      }
      return json(404, { error: `unknown simulator route ${method} ${p}` });
    } catch (err) {
      return json(400, { error: (err as Error).message });
    }
  }

  protected route(method: string, pathname: string): { route: Route; id: string } | undefined {
    for (const route of this.routes) {
      if (route.method !== method) continue;
      const m = route.pattern.exec(pathname);
      if (m) return { route, id: decodeURIComponent(m[1] ?? '') };
    }
    return undefined;
  }

  protected apiKey(req: HttpRequest): string | SimError {
    const auth = header(req.headers, 'authorization');
    let key: string | undefined;
    if (auth?.startsWith('Bearer ')) key = auth.slice(7).trim();
    else if (auth?.startsWith('Basic '))
      key = Buffer.from(auth.slice(6), 'base64').toString('utf8').split(':')[0];
    if (!key) {
      return new SimError(401, {
        type: 'invalid_request_error',
        message:
          "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
      });
    }
    if (!/^(sk|rk)_test_[A-Za-z0-9_]+$/.test(key)) {
      const masked = `${key.slice(0, 8)}${'*'.repeat(Math.max(0, key.length - 12))}${key.slice(-4)}`;
      return new SimError(401, {
        type: 'invalid_request_error',
        message: `Invalid API Key provided: ${masked} (the Stripe simulator accepts test mode keys only: sk_test_…)`,
      });
    }
    return key;
  }

  /** An answer in Stripe's format: pretty-printed JSON, as the API sends it. */
  protected reply(status: number, payload: unknown, headers: Record<string, string>): HttpReply {
    const text = typeof payload === 'string' ? payload : JSON.stringify(payload, null, 2);
    return { status, text, contentType: 'application/json', headers };
  }

  protected apiError(requestId?: string): StripeErrorBody {
    return this.withLogUrl(
      {
        type: 'api_error',
        message:
          "Sorry, something went wrong. We've already been notified of the problem, but if you need any help, you can reach us at https://support.stripe.com/contact.",
      },
      requestId,
    );
  }

  protected withLogUrl(body: StripeErrorBody, requestId?: string): StripeErrorBody {
    return requestId
      ? { ...body, request_log_url: `https://dashboard.stripe.com/test/logs/${requestId}` }
      : body;
  }
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
