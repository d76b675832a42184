/**
 * The money paystep recorded against the money the processor moved, payment by payment
 * (`paystep ledger check --processor`, docs/finance.md). The ledger's own invariants
 * (./check.ts) prove that paystep's books balance; they cannot see a refund the processor paid
 * that paystep never recorded, or one paystep recorded twice. This asks the processor for each
 * captured payment's refunded total and compares:
 *
 * - `refund_not_recorded`: the processor refunded more than paystep's succeeded and pending
 *   refunds together (money left the merchant's balance without a refund in paystep);
 * - `refund_recorded_twice`: paystep's succeeded refunds add up to more than the processor
 *   refunded (a refund counted twice, or counted as paid when it was not), or two of its refunds
 *   name the same processor refund.
 *
 * Pending refunds are in flight: a processor total between paystep's succeeded total and
 * succeeded + pending is not a discrepancy.
 */
import { processor } from '../connectors/registry.ts';
import type { Payment } from '../domain/payment.ts';
import { scanPages } from '../store/pages.ts';
import { toPayment } from '../store/payments.ts';
import { refundsOfPayment } from '../store/refunds.ts';
import { config } from '../shared/config.ts';

export type RefundDiscrepancyKind = 'refund_not_recorded' | 'refund_recorded_twice';

export interface RefundDiscrepancy {
  kind: RefundDiscrepancyKind;
  payment_id: string;
  merchant_id: string;
  processor: string;
  processor_reference: string;
  currency: string;
  /** Minor units the processor says were refunded. */
  processor_refunded: number;
  /** Minor units of paystep's succeeded refunds. */
  recorded_refunded: number;
  /** Minor units of paystep's pending refunds (in flight). */
  recorded_pending: number;
  explanation: string;
}

export interface ProcessorCheckReport {
  ok: boolean;
  checked: number;
  discrepancies: RefundDiscrepancy[];
  /** Payments the processor could not be asked about (it will be asked again next time). */
  unreachable: { payment_id: string; error: string }[];
}

/** Pure: the discrepancies of one payment, given what each side says. */
export function compareRefunds(
  p: Pick<Payment, 'id' | 'merchant_id' | 'processor' | 'processor_reference' | 'currency'>,
  processorRefunded: number,
  refunds: { status: string; amount: number; processor_reference: string | null }[],
): RefundDiscrepancy[] {
  const succeeded = refunds.filter((r) => r.status === 'succeeded');
  const recorded = succeeded.reduce((n, r) => n + r.amount, 0);
  const pending = refunds.filter((r) => r.status === 'pending').reduce((n, r) => n + r.amount, 0);
  const base = {
    payment_id: p.id,
    merchant_id: p.merchant_id,
    processor: p.processor ?? 'unknown',
    processor_reference: p.processor_reference ?? '',
    currency: p.currency,
    processor_refunded: processorRefunded,
    recorded_refunded: recorded,
    recorded_pending: pending,
  };
  const out: RefundDiscrepancy[] = [];
  if (processorRefunded > recorded + pending)
    out.push({
      ...base,
      kind: 'refund_not_recorded',
      explanation: `The processor refunded ${processorRefunded} but paystep recorded ${recorded} (+${pending} pending): ${processorRefunded - recorded - pending} was refunded without a refund in paystep.`,
    });
  const refs = succeeded.map((r) => r.processor_reference).filter((r): r is string => Boolean(r));
  const twice = refs.filter((r, i) => refs.indexOf(r) !== i);
  if (recorded > processorRefunded || twice.length)
    out.push({
      ...base,
      kind: 'refund_recorded_twice',
      explanation: twice.length
        ? `paystep recorded processor refund ${twice[0]} more than once.`
        : `paystep recorded ${recorded} of succeeded refunds but the processor refunded ${processorRefunded}.`,
    });
  return out;
}

/** Checks every captured payment created at or after `since` (epoch seconds; default all). */
export async function processorCheck(
  opts: { since?: number; merchantId?: string; onProgress?: (checked: number) => void } = {},
): Promise<ProcessorCheckReport> {
  const report: ProcessorCheckReport = { ok: true, checked: 0, discrepancies: [], unreachable: [] };
  const values: Record<string, unknown> = { ':p': 'payment', ':zero': 0, ':since': opts.since ?? 0 };
  let filter = 'kind = :p AND amount_captured > :zero AND created >= :since';
  if (opts.merchantId) {
    filter += ' AND merchant_id = :m';
    values[':m'] = opts.merchantId;
  }
  for await (const item of scanPages({
    TableName: config.tableName('main'),
    FilterExpression: filter,
    ExpressionAttributeValues: values,
  })) {
    const p = toPayment(item);
    if (!p.processor || !p.processor_reference) continue;
    report.checked++;
    opts.onProgress?.(report.checked);
    let processorRefunded: number;
    try {
      processorRefunded = (await (await processor(p.processor)).retrieve(p.processor_reference))
        .amountRefunded;
    } catch (err) {
      report.unreachable.push({ payment_id: p.id, error: (err as Error).message });
      continue;
    }
    report.discrepancies.push(...compareRefunds(p, processorRefunded, await refundsOfPayment(p.id)));
  }
  report.ok = report.discrepancies.length === 0 && report.unreachable.length === 0;
  return report;
}
