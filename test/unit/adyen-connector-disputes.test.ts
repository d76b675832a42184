/**
 * The Adyen dispute connector, pure parts (lambdas/connectors/adyen/disputes.ts): a dispute's state
 * folded from its notification facts the same way whatever order they arrived in (every
 * permutation), scheme reason codes in paystep's reasons, the defense reason and documents chosen
 * for neutral evidence, and the PDF the documents are.
 */
import {
  adyenReason,
  chooseDefenseReason,
  defenseDocuments,
  disputeState,
  textPdf,
} from '../../lambdas/connectors/adyen/disputes.ts';
import type { DisputeFact } from '../../lambdas/connectors/facts.ts';

const DISPUTE = 'DSP0000000000001';
const PAYMENT = 'PAY0000000000001';

let clock = 0;
function fact(
  raw: string,
  event: DisputeFact['event'],
  money: DisputeFact['money'],
  over: Partial<DisputeFact> = {},
): DisputeFact {
  clock++;
  const at = new Date(Date.UTC(2026, 0, 1, 0, 0, clock)).toISOString();
  return {
    processor: 'adyen',
    kind: 'dispute',
    id: `adyen:${raw}:${DISPUTE}:true:${at}`,
    at,
    raw_event: raw,
    success: true,
    amount: { value: 1500, currency: 'eur' },
    live: false,
    reference: DISPUTE,
    paymentReference: PAYMENT,
    merchantReference: 'pay_abc',
    event,
    money,
    reasonCode: '10.4',
    processorStatus: 'Undefended',
    evidenceDueBy: '2026-01-21T00:00:00.000Z',
    defendable: true,
    ...over,
  };
}

const noc = () => fact('NOTIFICATION_OF_CHARGEBACK', 'notification_of_chargeback', 'none');
const chargeback = () => fact('CHARGEBACK', 'chargeback', 'withdrawn');

function permutations<T>(xs: readonly T[]): T[][] {
  if (xs.length <= 1) return [[...xs]];
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]));
}

/** The state of every ordering of the facts: all equal, and that one returned. */
function foldedAnyOrder(facts: readonly DisputeFact[]) {
  const states = permutations(facts).map((p) => disputeState(DISPUTE, p));
  for (const s of states) expect(s).toEqual(states[0]);
  return states[0]!;
}

describe('disputeState: the dispute from its facts, in any order', () => {
  test('a chargeback: needs_response, amount withdrawn, deadline, paystep reason', () => {
    const s = foldedAnyOrder([noc(), chargeback()]);
    expect(s).toMatchObject({
      processor: 'adyen',
      processor_reference: DISPUTE,
      payment_reference: PAYMENT,
      paystep_payment_id: 'pay_abc',
      status: 'needs_response',
      processor_status: 'Undefended',
      amount: 1500,
      currency: 'eur',
      reason: 'fraudulent',
      network_reason_code: '10.4',
      evidence_due_by: Date.UTC(2026, 0, 21) / 1000,
    });
    expect(s.balance_transactions.map((t) => [t.amount, t.reporting_category])).toEqual([[-1500, 'dispute']]);
  });

  test('won: CHARGEBACK_REVERSED with status Won, funds returned', () => {
    const s = foldedAnyOrder([
      noc(),
      chargeback(),
      fact('CHARGEBACK_REVERSED', 'chargeback_reversed', 'returned', { processorStatus: 'Won' }),
    ]);
    expect(s.status).toBe('won');
    expect(s.balance_transactions.reduce((n, t) => n + t.amount, 0)).toBe(0);
  });

  test('lost: a reversal pending then a second chargeback, in any of the 24 orders', () => {
    const s = foldedAnyOrder([
      noc(),
      chargeback(),
      fact('CHARGEBACK_REVERSED', 'chargeback_reversed', 'returned', { processorStatus: 'Pending' }),
      fact('SECOND_CHARGEBACK', 'second_chargeback', 'withdrawn', { processorStatus: 'Lost' }),
    ]);
    expect(s.status).toBe('lost');
    expect(s.balance_transactions.reduce((n, t) => n + t.amount, 0)).toBe(-1500);
  });

  test('a reversal alone (the second chargeback not yet here) is still under review', () => {
    expect(
      foldedAnyOrder([
        chargeback(),
        fact('CHARGEBACK_REVERSED', 'chargeback_reversed', 'returned', { processorStatus: 'Pending' }),
      ]).status,
    ).toBe('under_review');
  });

  test('pre-arbitration: won or lost', () => {
    expect(
      foldedAnyOrder([chargeback(), fact('PREARBITRATION_WON', 'prearbitration_won', 'none')]).status,
    ).toBe('won');
    expect(
      foldedAnyOrder([
        chargeback(),
        fact('PREARBITRATION_WON', 'prearbitration_won', 'none'),
        fact('PREARBITRATION_LOST', 'prearbitration_lost', 'withdrawn'),
      ]).status,
    ).toBe('lost');
  });

  test('defense period ended: Accepted → accepted, Expired → lost; an inquiry just closes', () => {
    const ended = (status: string) =>
      fact('DISPUTE_DEFENSE_PERIOD_ENDED', 'defense_period_ended', 'none', { processorStatus: status });
    expect(foldedAnyOrder([noc(), chargeback(), ended('Accepted')]).status).toBe('accepted');
    expect(foldedAnyOrder([noc(), chargeback(), ended('Expired')]).status).toBe('lost');
    const rfi = fact('REQUEST_FOR_INFORMATION', 'request_for_information', 'none', { reasonCode: '13.1' });
    expect(foldedAnyOrder([rfi, ended('Expired')]).status).toBe('warning_closed');
    // A decision beats a lapse; a lapse with a defense pending decides nothing.
    const won = fact('CHARGEBACK_REVERSED', 'chargeback_reversed', 'returned', { processorStatus: 'Won' });
    expect(foldedAnyOrder([chargeback(), won, ended('Expired')]).status).toBe('won');
    expect(foldedAnyOrder([chargeback(), ended('Pending')]).status).toBe('under_review');
  });

  test('an inquiry moves no money; answered it is under review', () => {
    const rfi = fact('REQUEST_FOR_INFORMATION', 'request_for_information', 'none', { reasonCode: '13.1' });
    const s = disputeState(DISPUTE, [rfi])!;
    expect(s).toMatchObject({ status: 'warning_needs_response', reason: 'product_not_received' });
    expect(s.balance_transactions).toEqual([]);
    expect(disputeState(DISPUTE, [rfi], { defended: true })!.status).toBe('warning_under_review');
    expect(foldedAnyOrder([rfi, fact('INFORMATION_SUPPLIED', 'information_supplied', 'none')]).status).toBe(
      'warning_under_review',
    );
  });

  test('what paystep did: a defense is under review with its evidence; an acceptance is accepted', () => {
    const facts = [noc(), chargeback()];
    expect(
      disputeState(DISPUTE, facts, { defended: true, evidence: { uncategorized_text: 'x' } }),
    ).toMatchObject({
      status: 'under_review',
      processor_status: 'Pending',
      has_evidence: true,
      submission_count: 1,
      evidence: { uncategorized_text: 'x' },
    });
    expect(disputeState(DISPUTE, facts, { accepted: true })!.status).toBe('accepted');
    // A decision Adyen reported beats what paystep did.
    const won = fact('CHARGEBACK_REVERSED', 'chargeback_reversed', 'returned', { processorStatus: 'Won' });
    expect(disputeState(DISPUTE, [...facts, won], { defended: true })!.status).toBe('won');
  });

  test('a fraud notice alone is no dispute status; facts of other disputes are not read', () => {
    expect(
      disputeState(DISPUTE, [fact('NOTIFICATION_OF_FRAUD', 'notification_of_fraud', 'none')])!.status,
    ).toBeNull();
    expect(disputeState('OTHER', [noc(), chargeback()])).toBeUndefined();
  });

  test('scheme reason codes', () => {
    expect(adyenReason('10.4')).toBe('fraudulent');
    expect(adyenReason('4837')).toBe('fraudulent');
    expect(adyenReason('13.1')).toBe('product_not_received');
    expect(adyenReason('4855')).toBe('product_not_received');
    expect(adyenReason('12.6.1')).toBe('duplicate');
    expect(adyenReason('13.6')).toBe('credit_not_processed');
    expect(adyenReason('99.9')).toBe('general');
    expect(adyenReason(undefined)).toBe('general');
  });
});

const REASONS = [
  {
    defenseReasonCode: 'SupplyDefenseMaterial',
    satisfied: false,
    defenseDocumentTypes: [
      { defenseDocumentTypeCode: 'DefenseMaterial', available: false, requirementLevel: 'Required' },
    ],
  },
  {
    defenseReasonCode: 'GoodsOrServicesProvided',
    satisfied: false,
    defenseDocumentTypes: [
      { defenseDocumentTypeCode: 'ProofOfDelivery', available: false, requirementLevel: 'Required' },
      { defenseDocumentTypeCode: 'TermsAndConditions', available: false, requirementLevel: 'Optional' },
    ],
  },
];

const pdfText = (b64: string) => Buffer.from(b64, 'base64').toString('latin1');

describe('evidence → defense documents', () => {
  test('delivery evidence defends "goods or services provided"; other evidence the generic reason', () => {
    expect(chooseDefenseReason(REASONS, { shipping_tracking_number: 'T1' })?.defenseReasonCode).toBe(
      'GoodsOrServicesProvided',
    );
    expect(chooseDefenseReason(REASONS, { uncategorized_text: 'x' })?.defenseReasonCode).toBe(
      'SupplyDefenseMaterial',
    );
    expect(chooseDefenseReason([], { uncategorized_text: 'x' })).toBeUndefined();
  });

  test('each field goes to the document type of its group; a required type is never left out', () => {
    const docs = defenseDocuments(REASONS[1]!, {
      shipping_tracking_number: 'TRACK-1',
      refund_policy_disclosure: 'Refunds within 30 days',
      uncategorized_text: 'winning_evidence',
    });
    const byType = Object.fromEntries(docs.map((d) => [d.defenseDocumentTypeCode, pdfText(d.content)]));
    expect(Object.keys(byType).sort()).toEqual(['ProofOfDelivery', 'TermsAndConditions']);
    expect(byType.ProofOfDelivery).toContain('Shipping tracking number:');
    expect(byType.ProofOfDelivery).toContain('TRACK-1');
    expect(byType.ProofOfDelivery).toContain('winning_evidence'); // no type of its own: the required one
    expect(byType.TermsAndConditions).toContain('Refunds within 30 days');
    expect(docs.every((d) => d.contentType === 'application/pdf')).toBe(true);

    const onlyPolicy = defenseDocuments(REASONS[1]!, { refund_policy_disclosure: 'No refunds' });
    expect(onlyPolicy.map((d) => d.defenseDocumentTypeCode).sort()).toEqual([
      'ProofOfDelivery',
      'TermsAndConditions',
    ]);
  });
});

describe('textPdf', () => {
  test('a well-formed PDF: objects where the cross-reference table says, text escaped', () => {
    const pdf = textPdf(['Evidence (1)', 'back\\slash', 'caf\u00e9']).toString('latin1');
    expect(pdf.startsWith('%PDF-1.4\n')).toBe(true);
    expect(pdf.trimEnd().endsWith('%%EOF')).toBe(true);
    const startxref = Number(/startxref\n(\d+)\n/.exec(pdf)![1]);
    expect(pdf.slice(startxref, startxref + 4)).toBe('xref');
    const offsets = [...pdf.slice(startxref).matchAll(/^(\d{10}) 00000 n $/gm)].map((m) => Number(m[1]));
    offsets.forEach((o, i) => expect(pdf.slice(o, o + `${i + 1} 0 obj`.length)).toBe(`${i + 1} 0 obj`));
    expect(pdf).toContain('(Evidence \\(1\\)) Tj');
    expect(pdf).toContain('(back\\\\slash) Tj');
    expect(pdf).toContain('(caf?) Tj');
  });

  test('long text wraps and runs onto further pages', () => {
    const pdf = textPdf(Array.from({ length: 100 }, (_, i) => `line ${i} ${'x'.repeat(150)}`)).toString(
      'latin1',
    );
    expect(/\/Count (\d+)/.exec(pdf)![1]).toBe('4'); // 200 wrapped lines, 60 a page
  });
});
