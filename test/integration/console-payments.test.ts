/**
 * The console's payment screens against a local runtime (one for the file), called as the console's
 * handler calls them (a route matched by method and path, its permission checked, a signed-in
 * ConsoleRequest from test/fixtures/console.ts): payments of every kind are found by each key, the
 * payment page tells their story (explanation, attempts, refunds, ledger, merchant events, the
 * workflow graph), refunds respect the support limit and are made once even when the form is
 * submitted twice, review decisions work and are audited, executions are listed, stopped and
 * re-driven, and a merchant-limited operator never sees another merchant's payment.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import { refundsOfPayment } from '../../lambdas/store/refunds.ts';
import { entriesOfPayment } from '../../lambdas/store/ledger.ts';
import { eventsOfObject } from '../../lambdas/store/merchant-events.ts';
import { createPayment, getPayment } from '../../lambdas/store/payments.ts';
import { explain } from '../../lambdas/domain/payment.ts';
import { routes } from '../../lambdas/console/pages/index.ts';
import { can, type Operator } from '../../lambdas/console/model.ts';
import { ConsoleError, type ConsoleResponse } from '../../lambdas/console/types.ts';
import { escapeHtml } from '../../lambdas/console/html.ts';
import { consoleRequest, operator } from '../fixtures/console.ts';
import { apiClient, until, type Json } from '../fixtures/api.ts';
import { paymentItem } from '../fixtures/payments.ts';

const admin = operator('admin');
const support = operator('support'); // refund limit 100.00

describe('console payment screens on the local runtime', () => {
  let dir: string;
  let rt: Runtime;
  let server: Server;
  let merchantA: string;
  let merchantB: string;
  let apiA: ReturnType<typeof apiClient>;
  let apiB: ReturnType<typeof apiClient>;
  const tag = Date.now().toString(36);

  /** Calls a console route as the handler would: matched by method and path, permission checked. */
  async function consoleCall(
    op: Operator,
    method: 'GET' | 'POST',
    url: string,
    form: Record<string, string> = {},
  ): Promise<ConsoleResponse & { audited: unknown[] }> {
    const u = new URL(url, 'http://console.test');
    for (const route of routes) {
      if (route.method !== method) continue;
      const names: string[] = [];
      const re = new RegExp(
        `^${route.path.replace(/\{(\w+)\}/g, (_, n: string) => (names.push(n), '([^/]+)'))}$`,
      );
      const m = re.exec(u.pathname);
      if (!m) continue;
      if (!can(op.role, route.permission)) throw new ConsoleError(403, `no ${route.permission}`);
      const params = Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(m[i + 1]!)]));
      const req = consoleRequest(op, {
        method,
        path: u.pathname,
        params,
        query: Object.fromEntries(u.searchParams),
        form,
      });
      // A refusal carries what was audited before it, as a success does.
      const res = await route.handler(req).catch((err: unknown) => {
        throw err instanceof ConsoleError ? Object.assign(err, { audited: req.audited }) : err;
      });
      return Object.assign(res, { audited: req.audited });
    }
    throw new Error(`no route ${method} ${u.pathname}`);
  }
  const page = async (op: Operator, url: string) => {
    const r = await consoleCall(op, 'GET', url);
    if (r.kind !== 'page') throw new Error(`expected a page, got ${r.kind}`);
    return r.body.value;
  };
  const refused = async (p: Promise<unknown>) => {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    if (!(err instanceof ConsoleError)) throw new Error(`expected a ConsoleError, got ${String(err)}`);
    return err;
  };
  const pay = async (api = apiA, pm = 'pm_card_visa', extra: Json = {}) => {
    const r = await api('POST', '/v1/payments', {
      amount: 15_000,
      currency: 'usd',
      payment_method: pm,
      ...extra,
    });
    expect(r.status).toBeLessThan(300);
    return r.body;
  };
  const tokenOf = (html: string, action: string) => {
    const form = html.slice(html.indexOf(`action="/console${action}"`));
    return /name="token" value="([^"]+)"/.exec(form)![1]!;
  };

  let captured: Json;
  let declined: Json;
  let held: Json;
  let threeDs: Json;
  let other: Json;

  beforeAll(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200).end('ok'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-console-pay-'));
    process.env.PAYSTEP_RISK_BLOCKED_COUNTRIES = 'KP';
    // Slow enough that a payment waiting for its customer (1 h) or a review (24 h) keeps waiting.
    rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 20, scheduler: false });
    const a = await createMerchant('Acme');
    const b = await createMerchant('Other');
    merchantA = a.merchant.id;
    merchantB = b.merchant.id;
    apiA = apiClient(() => rt.url!, a.apiKey);
    apiB = apiClient(() => rt.url!, b.apiKey);
    const hooks = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    expect(
      (await apiA('POST', '/v1/webhook_endpoints', { url: `${hooks}/a`, enabled_events: ['*'] })).status,
    ).toBe(201);
    [captured, declined, held, threeDs, other] = await Promise.all([
      pay(apiA, 'pm_card_visa', { order_id: `ORD-${tag}-1`, customer: { email: `Jane.${tag}@Example.com` } }),
      pay(apiA, 'pm_card_visa_chargeDeclinedInsufficientFunds', { order_id: `ORD-${tag}-2` }),
      pay(apiA, 'pm_card_visa', { order_id: `ORD-${tag}-3`, customer: { country: 'KP' } }),
      pay(apiA, 'pm_card_authenticationRequired', { order_id: `ORD-${tag}-4` }),
      pay(apiB, 'pm_card_visa', { order_id: `ORD-${tag}-B`, customer: { email: `Jane.${tag}@Example.com` } }),
    ]);
    expect([captured.status, declined.status, held.status, threeDs.status, other.status]).toEqual([
      'captured',
      'failed',
      'pending_review',
      'requires_action',
      'captured',
    ]);
  });
  afterAll(async () => {
    await rt?.stop();
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
    delete process.env.PAYSTEP_RISK_BLOCKED_COUNTRIES;
  });

  const ids = (html: string) => [
    ...new Set([...html.matchAll(/href="\/console\/payments\/(pay_\w+)"/g)].map((m) => m[1]!)),
  ];

  test('search finds a payment by id, order id, email (any case), processor reference, status and date', async () => {
    expect(ids(await page(admin, `/payments?q=${captured.id}`))).toEqual([captured.id]);
    expect(ids(await page(admin, `/payments?q=ORD-${tag}-2`))).toEqual([declined.id]);
    // The same email at two merchants: both for an unlimited operator, newest first.
    const byEmail = ids(await page(admin, `/payments?q=${encodeURIComponent(`jane.${tag}@example.com`)}`));
    expect(byEmail.sort()).toEqual([captured.id, other.id].sort());
    // The reference index is kept from the payments' stream.
    const ref = captured.processor_reference as string;
    const byRef = await until('the reference indexed', async () => {
      const found = ids(await page(admin, `/payments?q=${ref}`));
      return found.length ? found : undefined;
    });
    expect(byRef).toEqual([captured.id]);
    const failed = ids(await page(admin, '/payments?status=failed'));
    expect(failed).toContain(declined.id);
    expect(failed).not.toContain(captured.id);
    const today = new Date().toISOString().slice(0, 10);
    const all = ids(await page(admin, `/payments?from=${today}&to=${today}`));
    expect(all).toEqual(expect.arrayContaining([captured.id, declined.id, held.id, threeDs.id, other.id]));
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    expect(ids(await page(admin, `/payments?from=${tomorrow}`))).toEqual([]);
    // Newest first: the five were created together, other merchant's included.
    expect(ids(await page(admin, `/payments?merchant=${merchantB}`))).toEqual([other.id]);
    const body = await page(admin, '/payments?q=nothing-like-this');
    expect(body).toContain('No payments found.');
    expect((await refused(page(admin, '/payments?status=lost'))).status).toBe(400);
  });

  test('listing pages, merged across merchants, go back in time without skipping or repeating a payment', async () => {
    // Three merchants' payments interleaved on one past day; every 10th failed. (The merge at a
    // merchant's read budget: test/unit/store-payment-search.test.ts.)
    const day = Date.parse('2020-02-03T00:00:00Z');
    const made: { id: string; ms: number; status: string; merchant_id: string }[] = [];
    const merchants = await Promise.all(
      ['P1', 'P2', 'P3'].map(async (n) => (await createMerchant(n)).merchant.id),
    );
    await Promise.all(
      merchants.map(async (merchant_id, k) => {
        for (let i = 0; i < 30; i++) {
          const ms = day + (i * 3 + k) * 1000;
          const id = `pay_list${tag}${String(k)}${String(i).padStart(4, '0')}`;
          const status = i % 10 === 7 ? 'failed' : 'captured';
          await createPayment(paymentItem({ id, merchant_id, status, created: ms / 1000 }), ms);
          made.push({ id, ms, status, merchant_id });
        }
      }),
    );
    const newestFirst = made.sort((a, b) => b.ms - a.ms);
    const walk = async (url: string) => {
      const seen: string[] = [];
      let pages = 0;
      for (let next: string | undefined = url; next; pages++) {
        const html = await page(admin, next);
        seen.push(...ids(html));
        next = /<a\s+rel="next"\s+href="\/console([^"]+)"/.exec(html)?.[1]?.replace(/&amp;/g, '&');
      }
      return { seen, pages };
    };
    const all = await walk('/payments?from=2020-02-03&to=2020-02-03');
    expect(all.seen).toEqual(newestFirst.map((p) => p.id));
    expect(all.pages).toBe(4); // 25 + 25 + 25 + 15
    const failed = await walk('/payments?from=2020-02-03&to=2020-02-03&status=failed');
    expect(failed.seen).toEqual(newestFirst.filter((p) => p.status === 'failed').map((p) => p.id));
    // One merchant only: its own listing.
    const one = await walk(`/payments?merchant=${merchants[1]}&from=2020-02-03&to=2020-02-03&status=failed`);
    expect(one.seen).toEqual(
      newestFirst.filter((p) => p.status === 'failed' && p.merchant_id === merchants[1]).map((p) => p.id),
    );
  });

  test('a merchant-limited operator finds and opens only its merchant’s payments', async () => {
    const limited = operator('support', { merchant_id: merchantA });
    const byEmail = ids(await page(limited, `/payments?q=${encodeURIComponent(`jane.${tag}@example.com`)}`));
    expect(byEmail).toEqual([captured.id]);
    expect(ids(await page(limited, `/payments?q=ORD-${tag}-B`))).toEqual([]);
    expect(ids(await page(limited, `/payments?q=${other.id}`))).toEqual([]);
    expect(ids(await page(limited, '/payments?status=captured'))).not.toContain(other.id);
    expect((await refused(page(limited, `/payments/${other.id}`))).status).toBe(404);
    const refund = consoleCall(limited, 'POST', `/payments/${other.id}/refund`, {
      token: 'a'.repeat(24),
      amount: '1',
    });
    expect((await refused(refund)).status).toBe(404);
    expect((await refused(page(limited, '/payments/pay_doesnotexist0000'))).status).toBe(404);
    expect((await refused(page(limited, `/executions/${other.id}?machine=payment`))).status).toBe(404);
  });

  test('the payment page tells the whole story: explanation, attempts, refund, ledger, events, the graph', async () => {
    const r = await apiA('POST', '/v1/refunds', { payment: captured.id, amount: 2_500 });
    expect(r.body.status).toBe('succeeded');
    await until(
      'ledger entries of the capture and refund',
      async () => (await entriesOfPayment(captured.id)).length >= 2,
    );
    await until('refund events', async () => (await eventsOfObject(r.body.id)).length > 0);
    await until('the refund event delivered', async () =>
      /refund\.succeeded<\/td>\s*<td>succeeded — http:\/\/127\.0\.0\.1/.test(
        await page(support, `/payments/${captured.id}`),
      ),
    );
    const html = await page(support, `/payments/${captured.id}`);
    const p = (await getPayment(captured.id))!;
    expect(html).toContain(escapeHtml(explain(p)));
    expect(html).toMatch(/<h1>Payment pay_\w+<\/h1>/);
    expect(html).toContain('Processor attempts');
    expect(html).toMatch(/<th scope="row">stripe<\/th>/);
    expect(html).toContain(r.body.id);
    expect(html).toContain('25.00 USD');
    expect(html).toContain(`cap:${captured.id}:15000`); // the capture's ledger entry
    expect(html).toMatch(
      /payment\.captured<\/td>\s*<td>succeeded — http:\/\/127\.0\.0\.1:\d+\/a \(HTTP 200, 1 attempt\)/,
    );
    expect(html).toContain('refund.succeeded');
    expect(html).toContain('<svg');
    expect(html).toMatch(/<g class="state visited" data-state="Authorize with processor">/);
    expect(html).toMatch(/<g class="state visited" data-state="Payment captured">/);
    expect(html).not.toMatch(/class="state[^"]*failed/);
    expect(html).toContain('action="/console/payments/' + captured.id + '/refund"');
    expect(html).toContain('name="csrf" value="csrf-test-token"');

    const d = await page(support, `/payments/${declined.id}`);
    expect(d).toContain(escapeHtml(declined.failure.recommended_action));
    expect(d).toContain('insufficient_funds');
    // The workflow ended where it decided the decline, an outcome (not a failed state).
    expect(d).toMatch(/<g class="state visited" data-state="Payment declined">/);
    expect(d).not.toContain('/refund"'); // nothing to refund

    const w = await page(support, `/payments/${threeDs.id}`);
    expect(w).toContain('waiting (task token)');
    expect(w).toMatch(/<g class="state visited current" data-state="Wait for customer authentication">/);
  });

  test('a refund over the support limit is refused naming it; within it, a form submitted twice refunds once', async () => {
    const p = await pay(apiA, 'pm_card_visa', { amount: 30_000 });
    const html = await page(support, `/payments/${p.id}`);
    expect(html).toContain('Your limit per refund: 100.00 USD.');
    const over = await refused(
      consoleCall(support, 'POST', `/payments/${p.id}/refund`, {
        token: tokenOf(html, `/payments/${p.id}/refund`),
        amount: '120.00',
      }),
    );
    expect(over.status).toBe(403);
    expect(over.message).toBe(
      'A refund of 120.00 USD is over your refund limit of 100.00 USD: ask an admin to issue it.',
    );
    // The refused attempt is in the audit log: who tried, how much, why it was refused.
    expect((over as ConsoleError & { audited: unknown[] }).audited).toEqual([
      expect.objectContaining({
        action: 'refund.refused',
        target: { kind: 'payment', id: p.id },
        after: expect.objectContaining({ refused_amount: 12_000, amount_refunded: 0 }),
        note: over.message,
      }),
    ]);
    // Empty amount = everything refundable (300.00): over the limit too.
    expect(
      (await refused(consoleCall(support, 'POST', `/payments/${p.id}/refund`, { token: 'b'.repeat(24) })))
        .status,
    ).toBe(403);
    expect(await refundsOfPayment(p.id)).toEqual([]);

    const form = {
      token: tokenOf(html, `/payments/${p.id}/refund`),
      amount: '50.00',
      reason: 'requested_by_customer',
    };
    const first = await consoleCall(support, 'POST', `/payments/${p.id}/refund`, form);
    const second = await consoleCall(support, 'POST', `/payments/${p.id}/refund`, form);
    expect(first).toMatchObject({ kind: 'redirect', to: `/payments/${p.id}` });
    expect(first.kind === 'redirect' && first.flash).toMatch(/^Refund re_\w+ of 50\.00 USD: succeeded\.$/);
    expect(second.kind === 'redirect' && second.flash).toBe(first.kind === 'redirect' && first.flash);
    const refunds = await refundsOfPayment(p.id);
    expect(refunds.map((r) => [r.amount, r.channel, r.status])).toEqual([[5_000, 'console', 'succeeded']]);
    expect((await getPayment(p.id))!.amount_refunded).toBe(5_000);
    expect(first.audited).toEqual([
      {
        action: 'refund.create',
        target: { kind: 'payment', id: p.id },
        merchant_id: merchantA,
        before: { status: 'captured', amount_refunded: 0 },
        after: {
          status: 'partially_refunded',
          amount_refunded: 5_000,
          refund: { id: refunds[0]!.id, amount: 5_000, status: 'succeeded' },
        },
        note: 'requested_by_customer',
      },
    ]);
    expect(second.audited).toEqual([]); // the replay acted on nothing

    // Two submits of one form at the same moment: one refund, whichever answers.
    const token = 'c'.repeat(24);
    const both = await Promise.allSettled([
      consoleCall(support, 'POST', `/payments/${p.id}/refund`, { token, amount: '10.00' }),
      consoleCall(support, 'POST', `/payments/${p.id}/refund`, { token, amount: '10.00' }),
    ]);
    for (const r of both)
      if (r.status === 'rejected') expect(r.reason).toMatchObject({ name: 'ConsoleError', status: 409 });
    expect(both.some((r) => r.status === 'fulfilled')).toBe(true);
    await until('the concurrent refund settled', async () =>
      (await refundsOfPayment(p.id)).every((r) => r.status !== 'pending'),
    );
    expect((await refundsOfPayment(p.id)).map((r) => r.amount).sort()).toEqual([1_000, 5_000]);
    // An admin has no limit.
    const big = await consoleCall(admin, 'POST', `/payments/${p.id}/refund`, {
      token: 'd'.repeat(24),
      amount: '200.00',
    });
    expect(big.kind === 'redirect' && big.flash).toMatch(/of 200\.00 USD: succeeded/);
    expect(
      (
        await refused(
          consoleCall(support, 'POST', `/payments/${p.id}/refund`, { token: 'e'.repeat(24), amount: 'ten' }),
        )
      ).status,
    ).toBe(400);
  });

  test('the reviews queue lists held payments oldest first; a decision with a reason moves them on and is audited', async () => {
    const held2 = await pay(apiA, 'pm_card_visa', { customer: { country: 'KP' } });
    const queue = await page(support, '/reviews');
    const order = ids(queue);
    expect(order.indexOf(held.id)).toBeGreaterThanOrEqual(0);
    expect(order.indexOf(held.id)).toBeLessThan(order.indexOf(held2.id));
    expect(queue).toContain('customer country KP is on the review list'); // why it was held
    expect(ids(await page(operator('support', { merchant_id: merchantB }), '/reviews'))).toEqual([]);

    const noReason = consoleCall(support, 'POST', `/payments/${held.id}/review`, {
      token: 'f'.repeat(24),
      decision: 'approve',
    });
    expect((await refused(noReason)).message).toBe('Give a reason for the decision.');
    const approveForm = {
      token: tokenOf(queue, `/payments/${held.id}/review`),
      decision: 'approve',
      reason: 'known customer, confirmed by phone',
      back: 'reviews',
    };
    const approved = await consoleCall(support, 'POST', `/payments/${held.id}/review`, approveForm);
    expect(approved).toMatchObject({ kind: 'redirect', to: '/reviews' });
    expect((await getPayment(held.id))!.status).toBe('captured');
    expect(approved.audited).toEqual([
      {
        action: 'review.approve',
        target: { kind: 'payment', id: held.id },
        merchant_id: merchantA,
        before: { status: 'pending_review', review: { id: held.review.id, status: 'open' } },
        after: { status: 'captured', review: { id: held.review.id, decision: 'approve' } },
        note: 'known customer, confirmed by phone',
      },
    ]);
    // The same form submitted again: the first decision's answer, nothing decided or audited twice.
    const twice = await consoleCall(support, 'POST', `/payments/${held.id}/review`, approveForm);
    expect(twice).toMatchObject({
      kind: 'redirect',
      to: '/reviews',
      flash: approved.kind === 'redirect' && approved.flash,
    });
    expect(twice.audited).toEqual([]);
    const rejected = await consoleCall(support, 'POST', `/payments/${held2.id}/review`, {
      token: 'g'.repeat(24),
      decision: 'reject',
      reason: 'stolen card pattern',
    });
    expect(rejected).toMatchObject({ kind: 'redirect', to: `/payments/${held2.id}` });
    expect(await getPayment(held2.id)).toMatchObject({
      status: 'canceled',
      cancellation_reason: 'review_rejected',
    });
    const after = ids(await page(support, '/reviews'));
    expect(after).not.toContain(held.id);
    expect(after).not.toContain(held2.id);
    // Already decided: a second decision is refused.
    const again = consoleCall(support, 'POST', `/payments/${held2.id}/review`, {
      token: 'h'.repeat(24),
      decision: 'approve',
      reason: 'changed my mind',
    });
    expect((await refused(again)).status).toBe(409);
    const timeline = await page(support, `/payments/${held2.id}`);
    expect(timeline).toContain('reason: stolen card pattern');
  });

  test('executions by status; stop one, then re-drive its payment through the sweeper', async () => {
    // A decline is an outcome, not a failed workflow: listed among the succeeded, not the failed.
    const failed = await page(support, '/executions?machine=payment&status=FAILED');
    expect(failed).not.toContain(`>${declined.id}</a>`);
    const succeeded = await page(support, '/executions?machine=payment&status=SUCCEEDED');
    expect(succeeded).toContain(`>${declined.id}</a>`);
    const waiting = await page(support, '/executions?machine=payment&status=WAITING');
    expect(waiting).toContain(`>${threeDs.id}</a>`);
    expect(waiting).not.toContain(`>${declined.id}</a>`);
    const detail = await page(support, `/executions/${threeDs.id}?machine=payment`);
    expect(detail).toContain('Wait for customer authentication');
    expect(detail).not.toContain('Stop execution'); // support cannot act
    expect(
      (await refused(consoleCall(support, 'POST', `/executions/${threeDs.id}/stop`, { reason: 'x' }))).status,
    ).toBe(403);

    const adminView = await page(admin, `/executions/${threeDs.id}?machine=payment`);
    expect(adminView).toContain('Stop execution');
    const stopped = await consoleCall(admin, 'POST', `/executions/${threeDs.id}/stop?machine=payment`, {
      reason: 'stuck in a test',
    });
    expect(stopped).toMatchObject({ kind: 'redirect', to: `/executions/${threeDs.id}?machine=payment` });
    expect(stopped.audited).toMatchObject([
      {
        action: 'execution.stop',
        before: { status: 'RUNNING' },
        after: { status: 'ABORTED' },
        note: 'stuck in a test',
      },
    ]);
    const aborted = await page(admin, `/executions/${threeDs.id}?machine=payment`);
    expect(aborted).toContain('Re-drive through the sweeper');
    expect(aborted).toMatch(/<g class="state visited failed" data-state="Wait for customer authentication">/);

    const redriven = await consoleCall(admin, 'POST', `/executions/${threeDs.id}/redrive?machine=payment`);
    expect(redriven).toMatchObject({ kind: 'redirect', to: `/executions/${threeDs.id}-r1?machine=payment` });
    expect(redriven.audited).toMatchObject([
      { action: 'execution.redrive', after: { payment_status: 'requires_action' } },
    ]);
    await until('the new execution waits for the customer', async () =>
      (await page(admin, `/executions/${threeDs.id}-r1?machine=payment`)).includes('waiting (task token)'),
    );
    // The old execution can no longer be re-driven (the payment has a newer one); the page shows both.
    expect(
      (await refused(consoleCall(admin, 'POST', `/executions/${threeDs.id}/redrive?machine=payment`))).status,
    ).toBe(409);
    const story = await page(admin, `/payments/${threeDs.id}`);
    expect(story).toContain(`>${threeDs.id}</a>`);
    expect(story).toContain(`>${threeDs.id}-r1</a>`);
    expect((await refused(page(admin, '/executions/nope-nope?machine=payment'))).status).toBe(404);
  });
});
