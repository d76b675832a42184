/**
 * The console's disputes and processors screens on the local runtime, called as the console's
 * handler calls them (test/fixtures/console-routes.ts): disputes from the Stripe simulator with
 * evidence deadlines 2 and 10 days away, the list by deadline with the one due soon at the top, a
 * dispute's page, evidence and acceptance once each (a form sent twice submits once) and audited,
 * an operator limited to one merchant kept to it; processor health, an incident declared and
 * resolved with its report downloaded, refusals, and the routing simulator.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import type { ConsoleRoute } from '../../lambdas/console/types.ts';
import { forwardDisputeEvents, type DisputeForwarder } from '../fixtures/dispute-forwarder.ts';
import { getDispute } from '../../lambdas/store/disputes.ts';
import { operator } from '../fixtures/console.ts';
import { consoleCaller, routePermission } from '../fixtures/console-routes.ts';
import { apiClient, until, type Json } from '../fixtures/api.ts';
import { can } from '../../lambdas/console/model.ts';

const DAY = 86_400;

let dir: string;
let rt: Runtime;
let routes: ConsoleRoute[] = [];
const call = consoleCaller(() => routes);
let forwarder: DisputeForwarder;
let merchantA: string;
let merchantB: string;
let apiA: ReturnType<typeof apiClient>;
let apiB: ReturnType<typeof apiClient>;
let soon: Json; // A's dispute, due in 2 days
let later: Json; // B's dispute, due in 10 days

async function disputedPayment(api: ReturnType<typeof apiClient>, windowDays: number): Promise<Json> {
  rt.stripe!.configureDisputes({ responseWindowSeconds: windowDays * DAY });
  const p = await api('POST', '/v1/payments', {
    amount: 2500,
    currency: 'usd',
    payment_method: 'pm_card_createDispute',
  });
  expect(p.body.status).toBe('captured');
  return until(
    `a dispute on ${p.body.id}`,
    async () => (await api('GET', `/v1/disputes?payment=${p.body.id}`)).body.data?.[0] as Json,
  );
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-console-ops-'));
  rt = await startRuntime({ dataDir: dir, port: 0, scheduler: false });
  rt.stripe!.configureDisputes({ createDelayMs: 20, decisionDelayMs: 50 });
  // Imported once the runtime has set the environment, as the handler would be.
  ({ routes } = await import('../../lambdas/console/pages/index.ts'));
  const a = await createMerchant('Acme');
  const b = await createMerchant('Bolt');
  merchantA = a.merchant.id;
  merchantB = b.merchant.id;
  apiA = apiClient(() => rt.url!, a.apiKey);
  apiB = apiClient(() => rt.url!, b.apiKey);
  // The simulator's dispute events to the entry point webhook ingestion calls (test/fixtures).
  forwarder = await forwardDisputeEvents(rt);
  soon = await disputedPayment(apiA, 2);
  later = await disputedPayment(apiB, 10);
});

afterAll(async () => {
  await forwarder?.stop();
  await rt?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

afterEach(() => expect(forwarder.errors).toEqual([]));

describe('disputes', () => {
  test('the list: soonest deadline first, the one due within 3 days at the top', async () => {
    const { res, text } = await call('admin', 'GET', '/disputes');
    expect(res).toMatchObject({ kind: 'page', nav: 'disputes', title: 'Disputes' });
    const urgent = text.slice(text.indexOf('id="due-soon"'), text.indexOf('id="due-later"'));
    const rest = text.slice(text.indexOf('id="due-later"'));
    expect(urgent).toContain(soon.id);
    expect(urgent).not.toContain(later.id);
    expect(rest).toContain(later.id);
    expect(urgent).toContain('class="urgent"');
    expect(text).toContain(`href="/console/disputes/${soon.id}"`);
    expect(text).toContain(`href="/console/payments/${soon.payment}"`);
    expect(text).toContain('25.00 USD');
    expect(text).toContain('<th scope="col">Evidence due</th>');
  });

  test('an operator limited to a merchant sees only its disputes, and not another merchant’s page', async () => {
    const onlyA = operator('admin', { merchant_id: merchantA });
    const { text } = await call(onlyA, 'GET', '/disputes');
    expect(text).toContain(soon.id);
    expect(text).not.toContain(later.id);
    await expect(call(onlyA, 'GET', `/disputes/${later.id}`)).rejects.toMatchObject({ status: 404 });
    await expect(
      call(onlyA, 'POST', `/disputes/${later.id}/accept`, { form: { confirm: 'yes' } }),
    ).rejects.toMatchObject({ status: 404 });
    await expect(call(onlyA, 'GET', '/disputes', { query: { id: later.id } })).rejects.toMatchObject({
      status: 404,
    });
    expect((await call(onlyA, 'GET', '/disputes', { query: { id: soon.id } })).res).toEqual({
      kind: 'redirect',
      to: `/disputes/${soon.id}`,
    });
  });

  test('a dispute’s page: payment link, explanation, timeline; forms only for a role that may respond', async () => {
    const admin = await call('admin', 'GET', `/disputes/${soon.id}`);
    expect(admin.text).toContain(`href="/console/payments/${soon.payment}"`);
    expect(admin.text).toMatch(
      /The cardholder disputed this payment \(fraudulent\).*Submit evidence by .* or accept the dispute/,
    );
    expect(admin.text).toContain('<caption>What happened to this dispute</caption>');
    expect(admin.text).toContain(`action="/console/disputes/${soon.id}/evidence"`);
    expect(admin.text).toContain('name="csrf" value="csrf-test-token"');
    expect(admin.text).toContain('<label for="ev-uncategorized_text">');
    const support = await call('support', 'GET', `/disputes/${soon.id}`);
    expect(support.text).toContain(soon.id);
    expect(support.text).not.toContain('/evidence"');
    expect(support.text).not.toContain('/accept"');
    // The handler refuses a support or finance operator the POST routes.
    expect(can('support', routePermission(routes, 'POST', '/disputes/{id}/evidence') as never)).toBe(false);
    expect(can('finance', routePermission(routes, 'POST', '/disputes/{id}/accept') as never)).toBe(false);
  });

  test('evidence: submitted once through the API’s service, audited; sent again it is not submitted twice', async () => {
    await expect(
      call('admin', 'POST', `/disputes/${soon.id}/evidence`, { form: { csrf: 'x', card_number: '4242' } }),
    ).rejects.toMatchObject({ status: 400 });
    await expect(
      call('admin', 'POST', `/disputes/${soon.id}/evidence`, {
        form: { csrf: 'x', uncategorized_text: ' ' },
      }),
    ).rejects.toMatchObject({ status: 400 });
    const form = { csrf: 'x', uncategorized_text: 'Delivered, signed for', product_description: 'Desk lamp' };
    const first = await call('admin', 'POST', `/disputes/${soon.id}/evidence`, { form });
    expect(first.res).toMatchObject({ kind: 'redirect', to: `/disputes/${soon.id}` });
    expect(first.req.audited).toEqual([
      {
        action: 'dispute.evidence',
        target: { kind: 'dispute', id: soon.id },
        merchant_id: merchantA,
        before: expect.objectContaining({
          status: 'needs_response',
          has_evidence: false,
          submission_count: 0,
        }),
        after: expect.objectContaining({
          status: 'under_review',
          submission_count: 1,
          fields: ['product_description', 'uncategorized_text'],
        }),
      },
    ]);
    expect(rt.stripe!.dispute(soon.processor_reference)!.evidence).toMatchObject({
      uncategorized_text: 'Delivered, signed for',
    });
    const again = await call('admin', 'POST', `/disputes/${soon.id}/evidence`, { form });
    expect(again.res).toMatchObject({ kind: 'redirect', flash: 'This evidence was submitted already.' });
    expect(again.req.audited).toEqual([]);
    expect((await getDispute(soon.id))!.submission_count).toBe(1);
    // No longer needs an answer: off the list, no forms.
    expect((await call('admin', 'GET', '/disputes')).text).not.toContain(soon.id);
    expect((await call('admin', 'GET', `/disputes/${soon.id}`)).text).not.toContain('/evidence"');
    // Other evidence now: refused, as the API refuses it.
    await expect(
      call('admin', 'POST', `/disputes/${soon.id}/evidence`, { form: { uncategorized_text: 'more' } }),
    ).rejects.toMatchObject({ status: 400, message: expect.stringContaining('under_review') });
  });

  test('accept: needs the confirmation, closes the dispute once, audited', async () => {
    await expect(call('admin', 'POST', `/disputes/${later.id}/accept`, { form: {} })).rejects.toMatchObject({
      status: 400,
    });
    const first = await call('admin', 'POST', `/disputes/${later.id}/accept`, { form: { confirm: 'yes' } });
    expect(first.res).toMatchObject({ kind: 'redirect', to: `/disputes/${later.id}` });
    expect(first.req.audited).toEqual([
      expect.objectContaining({
        action: 'dispute.accept',
        target: { kind: 'dispute', id: later.id },
        merchant_id: merchantB,
        before: expect.objectContaining({ status: 'needs_response', accepted_by_merchant: false }),
        after: expect.objectContaining({ accepted_by_merchant: true }),
      }),
    ]);
    const again = await call('admin', 'POST', `/disputes/${later.id}/accept`, { form: { confirm: 'yes' } });
    expect(again.res).toMatchObject({ kind: 'redirect', flash: 'This dispute was accepted already.' });
    expect(again.req.audited).toEqual([]);
    const d = await until('the dispute accepted', async () => {
      const x = (await apiB('GET', `/v1/disputes/${later.id}`)).body;
      return x.status === 'accepted' ? x : undefined;
    });
    expect(d.status).toBe('accepted');
  });
});

describe('processors and routing', () => {
  test('health per processor', async () => {
    await apiA('POST', '/v1/payments', { amount: 1000, currency: 'usd', payment_method: 'pm_card_visa' });
    const { res, text } = await call('support', 'GET', '/processors');
    expect(res).toMatchObject({ kind: 'page', nav: 'processors' });
    expect(text).toContain('<th scope="row">stripe</th>');
    expect(text).toContain('<th scope="row">adyen</th>');
    expect(text).toContain('Circuit breaker');
    // support may not act: no declare form.
    expect(text).not.toContain('action="/console/processors/incidents"');
  });

  test('an incident declared, refused moves, resolved with its report; each action audited', async () => {
    const declared = await call('admin', 'POST', '/processors/incidents', {
      form: { processor: 'stripe', reason: 'Elevated 5xx from Stripe' },
    });
    expect(declared.res.kind).toBe('redirect');
    const id = (declared.res as { to: string }).to.split('/').pop()!;
    expect(id).toMatch(/^inc_/);
    expect(declared.req.audited).toEqual([
      expect.objectContaining({
        action: 'incident.declare',
        target: { kind: 'incident', id },
        before: null,
        after: { status: 'open', processor: 'stripe', reason: 'Elevated 5xx from Stripe' },
      }),
    ]);
    const overview = await call('admin', 'GET', '/processors');
    expect(overview.text).toContain(`href="/console/processors/incidents/${id}"`);
    const page = await call('admin', 'GET', `/processors/incidents/${id}`);
    expect(page.text).toContain('Elevated 5xx from Stripe');
    expect(page.text).toContain(`action="/console/processors/incidents/${id}/resolve"`);
    expect(page.text).not.toContain(`/dismiss"`);
    expect(page.text).toContain('console:admin-tester');

    await expect(
      call('admin', 'POST', `/processors/incidents/${id}/dismiss`, { form: {} }),
    ).rejects.toMatchObject({
      status: 409,
    });
    await expect(
      call('admin', 'POST', '/processors/incidents', { form: { processor: 'nope', reason: 'x' } }),
    ).rejects.toMatchObject({ status: 400 });
    await expect(
      call('admin', 'GET', '/processors/incidents/inc_00000000000000000000'),
    ).rejects.toMatchObject({
      status: 404,
    });

    const resolved = await call('admin', 'POST', `/processors/incidents/${id}/resolve`, {
      form: { note: 'Stripe recovered' },
    });
    expect(resolved.req.audited).toEqual([
      expect.objectContaining({
        action: 'incident.resolve',
        before: expect.objectContaining({ status: 'open' }),
        after: expect.objectContaining({ status: 'resolved' }),
        note: 'Stripe recovered',
      }),
    ]);
    await expect(
      call('admin', 'POST', `/processors/incidents/${id}/resolve`, { form: {} }),
    ).rejects.toMatchObject({
      status: 409,
    });
    const after = await call('support', 'GET', `/processors/incidents/${id}`);
    expect(after.text).toContain('Stripe recovered');
    expect(after.text).toContain(`href="/console/processors/incidents/${id}/report?format=csv"`);
    const csv = await call('support', 'GET', `/processors/incidents/${id}/report`, {
      query: { format: 'csv' },
    });
    expect(csv.res).toMatchObject({
      kind: 'download',
      filename: `${id}.csv`,
      contentType: 'text/csv; charset=utf-8',
    });
    expect((csv.res as { body: string }).body.split('\n')[0]).toContain(',');
    const json = await call('support', 'GET', `/processors/incidents/${id}/report`, {
      query: { format: 'json' },
    });
    expect(JSON.parse((json.res as { body: string }).body)).toMatchObject({
      object: 'incident_report',
      incident: { id, status: 'resolved' },
    });
    // An operator limited to one merchant: incidents are platform-wide.
    const onlyA = operator('admin', { merchant_id: merchantA });
    await expect(call(onlyA, 'GET', `/processors/incidents/${id}`)).rejects.toMatchObject({ status: 403 });
    await expect(call(onlyA, 'GET', `/processors/incidents/${id}/report`)).rejects.toMatchObject({
      status: 403,
    });
    expect((await call(onlyA, 'GET', '/processors')).text).not.toContain(id);
  });

  test('routing: a merchant’s configuration and the simulator, in words', async () => {
    expect(routePermission(routes, 'GET', '/processors/routing')).toBe('routing.read');
    const none = await call('admin', 'GET', '/processors/routing');
    expect(none.text).toContain('Choose a merchant');
    expect(none.text).toContain(`<option value="${merchantA}"`);
    await apiA('PUT', '/v1/routing', {
      rules: [{ name: 'euro to adyen', when: { currency: ['eur'] }, processors: ['adyen', 'stripe'] }],
    });
    const cfg = await call('admin', 'GET', '/processors/routing', { query: { merchant: merchantA } });
    expect(cfg.text).toContain('<th scope="row">euro to adyen</th>');
    expect(cfg.text).toContain('currency in eur');
    const sim = await call('admin', 'GET', '/processors/routing', {
      query: { merchant: merchantA, amount: '1000', currency: 'EUR' },
    });
    expect(sim.text).toContain('adyen → stripe');
    expect(sim.text).toContain('euro to adyen');
    await expect(
      call('admin', 'GET', '/processors/routing', {
        query: { merchant: merchantA, amount: 'x', currency: 'eur' },
      }),
    ).rejects.toMatchObject({ status: 400 });
    await expect(
      call('admin', 'GET', '/processors/routing', { query: { merchant: 'mch_nope' } }),
    ).rejects.toMatchObject({ status: 404 });
    // Limited to a merchant: always its own, whatever the query says.
    const onlyB = operator('admin', { merchant_id: merchantB });
    const own = await call(onlyB, 'GET', '/processors/routing', { query: { merchant: merchantA } });
    expect(own.text).toContain(`Routing of ${merchantB}`);
    expect(own.text).not.toContain('euro to adyen');
  });
});
