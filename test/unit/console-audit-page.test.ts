/**
 * The audit screen (lambdas/console/pages/audit.ts) on a local table: newest first, filters by
 * operator name and by object, pages, escaping of what operators wrote, and an operator limited to
 * one merchant seeing only that merchant's entries.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { envVarFor } from '../../lib/topology.ts';
import { writeAudit } from '../../lambdas/store/audit.ts';
import { createOperator } from '../../lambdas/store/operators.ts';
import { auditRoutes } from '../../lambdas/console/pages/audit.ts';
import type { Html } from '../../lambdas/console/html.ts';
import { consoleRequest, operator } from '../fixtures/console.ts';
import { startLocalTable, type LocalTable } from './store-local-table.ts';

const PEPPER = envVarFor.secretValue('api-key-pepper');
let table: LocalTable;
const page = auditRoutes.find((r) => r.path === '/audit')!;

const render = async (query: Record<string, string>, op = operator('admin')) => {
  const res = await page.handler(consoleRequest(op, { path: '/audit', query }));
  if (res.kind !== 'page') throw new Error(`expected a page, got ${res.kind}`);
  return (res.body as Html).value;
};

beforeAll(async () => {
  table = await startLocalTable();
  process.env[PEPPER] = 'unit-test-pepper';
  const ann = (await createOperator({ name: 'ann', role: 'admin' })).operator;
  const sam = (await createOperator({ name: 'sam', role: 'support' })).operator;
  const t = 1_800_000_000_000;
  await writeAudit(
    {
      action: 'refund.create',
      target: { kind: 'payment', id: 'pay_a' },
      merchant_id: 'mch_1',
      note: '<b>customer asked</b>',
      before: { status: 'captured' },
      after: { status: 'refunded' },
    },
    sam,
    t,
  );
  await writeAudit(
    { action: 'review.approve', target: { kind: 'review', id: 'rv_b' }, merchant_id: 'mch_2' },
    ann,
    t + 1,
  );
  for (let i = 0; i < 55; i++)
    await writeAudit(
      { action: 'incident.resolve', target: { kind: 'incident', id: `inc_${i}` } },
      ann,
      t + 10 + i,
    );
}, 60_000);
afterAll(async () => {
  delete process.env[PEPPER];
  await table?.stop();
});

describe('audit screen', () => {
  it('lists newest first, 50 to a page, with a link to older entries', async () => {
    const first = await render({});
    expect(first.indexOf('inc_54')).toBeLessThan(first.indexOf('inc_53'));
    expect(first).not.toContain('rv_b');
    const next = /href="([^"]*after=[^"]+)"/.exec(first)![1]!.replace(/&amp;/g, '&');
    const after = new URL(next, 'http://x').searchParams.get('after')!;
    const second = await render({ after });
    expect(second).toContain('rv_b');
    expect(second).toContain('pay_a');
    expect(second).not.toContain('inc_10<');
  });
  it('filters by operator and by object; escapes notes; shows before and after', async () => {
    const sams = await render({ operator: 'sam' });
    expect(sams).toContain('refund.create');
    expect(sams).not.toContain('review.approve');
    expect(sams).toContain('&lt;b&gt;customer asked&lt;/b&gt;');
    expect(sams).toContain('&quot;refunded&quot;');
    const onReview = await render({ target_kind: 'review', target_id: 'rv_b' });
    expect(onReview).toContain('review.approve');
    expect(onReview).not.toContain('refund.create');
    expect(await render({ operator: 'nobody' })).toContain('No entries match these filters');
  });
  it('refuses malformed filters with a 400', async () => {
    await expect(render({ operator: 'Not A Name' })).rejects.toMatchObject({ status: 400 });
    await expect(render({ target_kind: 'payment' })).rejects.toMatchObject({ status: 400 });
    await expect(render({ after: 'x' })).rejects.toMatchObject({ status: 400 });
  });
  it('an operator limited to one merchant sees only its entries', async () => {
    const body = await render({ operator: 'sam' }, operator('admin', { merchant_id: 'mch_2' }));
    expect(body).not.toContain('refund.create');
    const own = await render(
      { target_kind: 'review', target_id: 'rv_b' },
      operator('admin', { merchant_id: 'mch_2' }),
    );
    expect(own).toContain('review.approve');
  });
});
