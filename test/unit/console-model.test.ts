import { describe, expect, it } from '@jest/globals';
import { html, join, raw } from '../../lambdas/console/html.ts';
import { can, PERMISSIONS, refundLimit, ROLES, seesMerchant } from '../../lambdas/console/model.ts';
import { operator } from '../fixtures/console.ts';

describe('console html', () => {
  it('escapes every interpolated value, keeps Html as it is', () => {
    const name = '<script>alert("x")</script> & \'co\'';
    const out = html`<p title="${name}">${name}${raw('<b>ok</b>')}</p>`.value;
    expect(out).toBe(
      '<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;co&#39;">' +
        '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;co&#39;<b>ok</b></p>',
    );
  });
  it('renders lists, numbers and leaves out null, undefined and false', () => {
    const h = html; // (prettier reflows templates tagged `html`; this one's whitespace is the point)
    const items = ['a<', 'b'].map((s) => h`<li>${s}</li>`);
    expect(h`<ul>${items}</ul>${null}${undefined}${false}${0}`.value).toBe(
      '<ul><li>a&lt;</li><li>b</li></ul>0',
    );
    expect(join(['x', h`<i>y</i>`], ', ').value).toBe('x, <i>y</i>');
  });
});

describe('console roles', () => {
  it('admin may do everything', () => {
    for (const p of PERMISSIONS) expect(can('admin', p)).toBe(true);
  });
  it('support cannot open finance screens, incidents, routing or the audit log', () => {
    for (const p of [
      'reconciliation.read',
      'reports.read',
      'ledger.read',
      'incidents.act',
      'routing.read',
      'audit.read',
    ] as const)
      expect(can('support', p)).toBe(false);
    expect(can('support', 'refunds.create')).toBe(true);
    expect(can('support', 'reviews.decide')).toBe(true);
  });
  it('finance cannot refund, decide reviews or act on incidents', () => {
    for (const p of ['refunds.create', 'reviews.decide', 'incidents.act', 'disputes.respond'] as const)
      expect(can('finance', p)).toBe(false);
    expect(can('finance', 'reconciliation.resolve')).toBe(true);
  });
  it('every role reaches the home page', () => {
    for (const r of ROLES) expect(can(r, 'home.read')).toBe(true);
  });
  it('refund limits: support has one (its own or the default), finance none, admin unlimited', () => {
    expect(refundLimit(operator('support'))).toBe(10_000);
    expect(refundLimit(operator('support', { refund_limit: 2_500 }))).toBe(2_500);
    expect(refundLimit(operator('finance'))).toBe(0);
    expect(refundLimit(operator('admin'))).toBeUndefined();
  });
  it('an operator limited to a merchant sees only that merchant', () => {
    expect(seesMerchant(operator('support', { merchant_id: 'm_1' }), 'm_1')).toBe(true);
    expect(seesMerchant(operator('support', { merchant_id: 'm_1' }), 'm_2')).toBe(false);
    expect(seesMerchant(operator('admin'), 'm_2')).toBe(true);
  });
});
