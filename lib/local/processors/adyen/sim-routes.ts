/**
 * The Adyen simulator's own routes under `/_sim/` (no auth; the server listens on 127.0.0.1):
 * test controls, the 3-D Secure page a shopper would see, and views of the simulator's state.
 * Listed in simulator.ts's header and in docs/simulators.md.
 */
import { validateDeliveryControls } from '../framework/delivery.ts';
import { FaultError } from '../framework/faults.ts';
import type { HttpReply, HttpRequest, Route } from '../framework/http.ts';
import type { AuthOutcome } from './model.ts';
import { reportFileName } from './settlement.ts';
import type { AdyenSimulator } from './simulator.ts';

type Json = Record<string, unknown>;

const ok = (json: unknown, status = 200): HttpReply => ({ status, json });
const bad = (message: string, status = 400): HttpReply => ({ status, json: { error: message } });

function body(req: HttpRequest): Json {
  if (!req.body) return {};
  const v: unknown = JSON.parse(req.body);
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new TypeError('body must be a JSON object');
  return v as Json;
}

/** Runs a control, turning its validation errors into 400 and unknown objects into 404. */
function guard(fn: () => HttpReply): HttpReply {
  try {
    return fn();
  } catch (err) {
    if (err instanceof FaultError || err instanceof TypeError || err instanceof SyntaxError)
      return bad((err as Error).message);
    const message = (err as Error).message;
    if (/^no (payment|dispute)/.test(message)) return bad(message, 404);
    return bad(message, 409);
  }
}

const OUTCOMES: readonly AuthOutcome[] = ['authenticated', 'failed', 'cancelled'];

export function simRoutes(sim: AdyenSimulator): Route[] {
  const r = (method: string, re: string, handler: Route['handler']): Route => ({
    method,
    pattern: new RegExp(`^/_sim${re}$`),
    handler,
  });
  return [
    r('GET', '/faults', () => ok(sim.faults.get())),
    // Answered once the API door has opened or closed as the faults say.
    r('POST', '/faults', async (req) => {
      const answer = guard(() => ok(sim.faults.set(body(req))));
      await sim.doorSettled();
      return answer;
    }),
    r('DELETE', '/faults', async () => {
      const answer = ok(sim.faults.reset());
      await sim.doorSettled();
      return answer;
    }),
    r('GET', '/stats', () => ok(sim.stats())),

    r('GET', '/notifications', () =>
      ok({
        controls: sim.notifications.controls,
        stats: sim.notifications.stats(),
        pending: sim.notifications.pending(),
        attempts: sim.notifications.attempts().slice(-100),
        items: sim.notifications.items().slice(-100),
      }),
    ),
    r('POST', '/notifications/controls', (req) =>
      guard(() =>
        ok(sim.notifications.configure(validateDeliveryControls(body(req), sim.notifications.controls))),
      ),
    ),
    r('DELETE', '/notifications/controls', () => ok(sim.notifications.reset())),
    r('POST', '/notifications/release', () => {
      sim.notifications.releaseHeld();
      return ok({ released: true });
    }),

    r('GET', '/payments/([^/]+)', (_req, [psp]) => {
      const payment = sim.payments.get(psp!);
      if (!payment) return bad(`no payment ${psp}`, 404);
      return ok({
        payment,
        modifications: sim.modifications.of(psp!),
        disputes: sim.disputes.ofPayment(psp!),
      });
    }),
    r('POST', '/payments/([^/]+)/resolve', (req, [psp]) =>
      guard(() => {
        const outcome = body(req).outcome ?? 'authorised';
        if (outcome !== 'authorised' && outcome !== 'refused')
          throw new TypeError('outcome must be authorised or refused');
        return ok(sim.payments.response(sim.payments.resolvePending(psp!, outcome)));
      }),
    ),
    r('POST', '/payments/([^/]+)/dispute', (req, [psp]) =>
      guard(() => {
        const b = body(req);
        const kind = b.kind ?? 'chargeback';
        if (kind !== 'chargeback' && kind !== 'rfi') throw new TypeError('kind must be chargeback or rfi');
        if (b.outcome !== undefined && b.outcome !== 'won' && b.outcome !== 'lost')
          throw new TypeError('outcome must be won or lost');
        if (b.reasonCode !== undefined && typeof b.reasonCode !== 'string')
          throw new TypeError('reasonCode must be a string');
        return ok(
          sim.disputes.open(psp!, {
            kind,
            ...(b.reasonCode ? { reasonCode: b.reasonCode as string } : {}),
            ...(b.outcome ? { outcome: b.outcome as 'won' | 'lost' } : {}),
          }),
        );
      }),
    ),

    r('GET', '/3ds/([^/]+)', (_req, [token]) => ({
      status: 200,
      contentType: 'text/html;charset=UTF-8',
      text: threeDSPage(token!),
    })),
    r('POST', '/3ds/([^/]+)', (req, [token]) =>
      guard(() => {
        const outcome = (body(req).outcome ?? 'authenticated') as AuthOutcome;
        if (!OUTCOMES.includes(outcome)) throw new TypeError(`outcome must be one of ${OUTCOMES.join(', ')}`);
        const { redirectResult, returnUrl } = sim.payments.authenticate(token!, outcome);
        return ok({ redirectResult, location: withParam(returnUrl, 'redirectResult', redirectResult) });
      }),
    ),
    r('GET', '/3ds/([^/]+)/complete', (req, [token]) =>
      guard(() => {
        const outcome = (req.url.searchParams.get('outcome') ?? 'authenticated') as AuthOutcome;
        if (!OUTCOMES.includes(outcome)) throw new TypeError(`outcome must be one of ${OUTCOMES.join(', ')}`);
        const { redirectResult, returnUrl } = sim.payments.authenticate(token!, outcome);
        return {
          status: 302,
          headers: { Location: withParam(returnUrl, 'redirectResult', redirectResult) },
          text: '',
        };
      }),
    ),

    r('GET', '/disputes/([^/]+)', (_req, [psp]) => {
      const d = sim.disputes.get(psp!);
      return d ? ok(d) : bad(`no dispute ${psp}`, 404);
    }),
    r('POST', '/disputes/([^/]+)/close', (req, [psp]) =>
      guard(() => {
        const outcome = body(req).outcome;
        if (outcome !== 'won' && outcome !== 'lost') throw new TypeError('outcome must be won or lost');
        return ok(sim.disputes.close(psp!, outcome));
      }),
    ),

    r('POST', '/settlement/close', () => ok({ batches: sim.settleBatch() })),
    r('GET', '/settlement/batches', () => ok({ batches: sim.settlement.batches() })),
    r('GET', '/reports/settlement_detail_report_batch_(\\d+)\\.csv', (req, [n]) => {
      const account = req.url.searchParams.get('merchantAccount') ?? undefined;
      const csv = sim.settlementReport(Number(n), account);
      return csv === undefined
        ? bad(`no ${reportFileName(Number(n))}`, 404)
        : { status: 200, text: csv, contentType: 'text/csv;charset=UTF-8' };
    }),
  ];
}

function withParam(url: string, name: string, value: string): string {
  const u = new URL(url);
  u.searchParams.set(name, value);
  return u.toString();
}

function threeDSPage(token: string): string {
  const t = encodeURIComponent(token);
  const link = (outcome: AuthOutcome, label: string) =>
    `<p><a href="/_sim/3ds/${t}/complete?outcome=${outcome}">${label}</a></p>`;
  return `<!doctype html><html><head><title>3-D Secure (paystep Adyen simulator)</title></head><body>
<h1>3-D Secure 2 authentication</h1>
<p>This page stands in for the card issuer's challenge. Choose the shopper's answer; you are sent back to the merchant's returnUrl with a redirectResult.</p>
${link('authenticated', 'Authenticate (password: password)')}
${link('failed', 'Fail authentication')}
${link('cancelled', 'Cancel')}
</body></html>`;
}
