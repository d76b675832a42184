/**
 * The ledger invariant check from the console, in the background (issue 13), over HTTP on the local
 * runtime: a finance operator's POST (with the session's CSRF token) records a request, audited,
 * and the `ledger-checks` queue's consumer runs it; the page shows the latest result (one
 * merchant's rows to an operator limited to it). A request while one runs starts nothing; a message
 * redelivered after its run finished does nothing; a run left behind by a crash is taken over once
 * stale; support may not ask; `?check=run` runs nothing.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import { createOperator } from '../../lambdas/store/operators.ts';
import { listAudit } from '../../lambdas/store/audit.ts';
import { getLedgerCheck, requestCheck, startCheck } from '../../lambdas/store/ledger-check.ts';
import { runLedgerCheck } from '../../lambdas/ledger/check-job.ts';
import { LEDGER_CHECK_QUEUE } from '../../lambdas/ledger/check-request.ts';
import { STALE_AFTER_MS } from '../../lambdas/ledger/check-run.ts';
import { clients } from '../../lambdas/shared/aws.ts';
import { apiClient, until } from '../fixtures/api.ts';
import { consoleHttp } from '../fixtures/console-http.ts';

let dir: string;
let rt: Runtime;
let merchantA: string;
let merchantB: string;
const keys: Record<'finance' | 'financeB' | 'support', string> = { finance: '', financeB: '', support: '' };
let financeId: string;

const { get, post, signIn } = consoleHttp(() => rt.url!);

/** The ledger page as `who` sees it, whitespace collapsed. */
async function ledgerPage(who: { cookie: string }, query = ''): Promise<string> {
  const r = await get(`/console/finance/ledger${query}`, who.cookie);
  expect(r.status).toBe(200);
  return r.body.replace(/\s+/g, ' ').replace(/>\s+/g, '>').replace(/\s+</g, '<');
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-console-ledger-'));
  rt = await startRuntime({ dataDir: dir, port: 0, scheduler: false });
  const a = await createMerchant('Acme');
  const b = await createMerchant('Bolt');
  [merchantA, merchantB] = [a.merchant.id, b.merchant.id];
  for (const [key, amount] of [
    [a.apiKey, 1050],
    [b.apiKey, 3000],
  ] as const) {
    const api = apiClient(() => rt.url!, key);
    const r = await api('POST', '/v1/payments', { amount, currency: 'usd', payment_method: 'pm_card_visa' });
    expect(r.status).toBe(201);
  }
  await rt.settle();
  const finance = await createOperator({ name: 'fay', role: 'finance' });
  financeId = finance.operator.id;
  keys.finance = finance.key;
  keys.financeB = (await createOperator({ name: 'fred', role: 'finance', merchant_id: merchantB })).key;
  keys.support = (await createOperator({ name: 'sam', role: 'support' })).key;
}, 60_000);

afterAll(async () => {
  await rt?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('the ledger check from the console', () => {
  test('never run: the page says so, and ?check=run runs nothing', async () => {
    const finance = await signIn(keys.finance);
    for (const q of ['', '?check=run']) {
      const page = await ledgerPage(finance, q);
      expect(page).toContain('The check has never run.');
      expect(page).toContain('action="/console/finance/ledger/check"');
      expect(page).not.toContain('Invariant check:');
    }
    expect(await getLedgerCheck()).toBeUndefined();
  });

  test('support may not ask for a check nor read the ledger; a POST without the CSRF token does nothing', async () => {
    const support = await signIn(keys.support);
    expect((await post('/console/finance/ledger/check', { csrf: support.csrf }, support.cookie)).status).toBe(
      403,
    );
    expect((await get('/console/finance/ledger', support.cookie)).status).toBe(403);
    const finance = await signIn(keys.finance);
    expect((await post('/console/finance/ledger/check', {}, finance.cookie)).status).toBe(403);
    await rt.settle();
    expect(await getLedgerCheck()).toBeUndefined();
  });

  test('finance asks: audited, run by the queue’s consumer, the result shown (one merchant’s to a limited operator)', async () => {
    const finance = await signIn(keys.finance);
    const r = await post('/console/finance/ledger/check', { csrf: finance.csrf }, finance.cookie);
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/console/finance/ledger');
    const requested = (await getLedgerCheck())!;
    expect(requested.requested_by).toBe(`console:${financeId}`);
    const audit = await listAudit({ target: { kind: 'ledger_check', id: requested.request_id }, limit: 10 });
    expect(audit.data).toMatchObject([
      { action: 'ledger.check_requested', operator: { id: financeId }, after: { outcome: 'requested' } },
    ]);
    const done = await until('the check to finish', async () => {
      const s = await getLedgerCheck();
      return s?.status === 'finished' && s;
    });
    expect(done.request_id).toBe(requested.request_id);
    expect(done.result).toMatchObject({ request_id: requested.request_id, ok: true, unbalanced: 0 });
    expect(done.result!.entries).toBeGreaterThanOrEqual(2);

    const page = await ledgerPage(finance);
    expect(page).toContain('Invariant check: holds');
    expect(page).toContain(`<th scope="row">${merchantA}</th>`);
    expect(page).toContain(`<th scope="row">${merchantB}</th>`);
    expect(page).toContain('trial balance 0 (must be 0)');

    const onlyB = await ledgerPage(await signIn(keys.financeB));
    expect(onlyB).toContain('Invariant check: holds');
    expect(onlyB).toContain(`<th scope="row">${merchantB}</th>`);
    expect(onlyB).not.toContain(merchantA);
    expect(onlyB).not.toContain('trial balance');
  });

  test('a message redelivered after its run finished does nothing', async () => {
    const before = (await getLedgerCheck())!;
    expect(before.status).toBe('finished');
    await clients.sqs().send(
      new SendMessageCommand({
        QueueUrl: rt.queueUrl(LEDGER_CHECK_QUEUE),
        MessageBody: JSON.stringify({ type: 'ledger.check', request_id: before.request_id }),
      }),
    );
    await rt.settle();
    expect(await getLedgerCheck()).toEqual(before);
    expect(await runLedgerCheck(before.request_id)).toBe('already_finished');
    expect(await getLedgerCheck()).toEqual(before);
  });

  test('a request while one runs starts nothing; a run left behind is taken over once stale', async () => {
    const previous = (await getLedgerCheck())!;
    // A run in progress (as the job marks it), its message already taken off the queue.
    const now = Date.now();
    expect(await requestCheck('lchk_inprogress', 'console:op_other', now)).toBeDefined();
    const running = (await startCheck('lchk_inprogress', now))!;
    expect(running.status).toBe('running');

    const finance = await signIn(keys.finance);
    const page = await ledgerPage(finance);
    expect(page).toContain('A check is running since');
    expect(page).toContain('<button type="submit" disabled>Run the check</button>');
    // The last finished run's result stays shown meanwhile.
    expect(page).toContain('Invariant check: holds');

    const r = await post('/console/finance/ledger/check', { csrf: finance.csrf }, finance.cookie);
    expect(r.status).toBe(303);
    await rt.settle();
    expect(await getLedgerCheck()).toEqual(running);
    const audit = await listAudit({ target: { kind: 'ledger_check', id: 'lchk_inprogress' }, limit: 10 });
    expect(audit.data).toMatchObject([
      { action: 'ledger.check_requested', after: { outcome: 'already_running' } },
    ]);
    // Its own message delivered twice meanwhile: the run in progress is not started again.
    expect(await runLedgerCheck('lchk_inprogress')).toBe('running_elsewhere');
    expect(await getLedgerCheck()).toEqual(running);
    // A superseded request's message does nothing either.
    expect(await runLedgerCheck(previous.request_id)).toBe('superseded');

    // The run died (its timeout passed): the redelivered message takes it over and finishes it.
    const later = () => Date.now() + STALE_AFTER_MS + 1000;
    expect(await runLedgerCheck('lchk_inprogress', later)).toBe('finished');
    const finished = (await getLedgerCheck())!;
    expect(finished).toMatchObject({ status: 'finished', request_id: 'lchk_inprogress' });
    expect(finished.result).toMatchObject({ request_id: 'lchk_inprogress', ok: true });
    expect(await runLedgerCheck('lchk_inprogress', later)).toBe('already_finished');
  });
});
