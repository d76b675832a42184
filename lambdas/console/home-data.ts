/**
 * What the console's home page shows (docs/console.md "Screens"), read through the stores and
 * services the API, the sweeper and the CLI use. Every read is bounded (a capped number of items or
 * pages), so the page renders fast whatever the size of the store; a count that reached its cap is
 * shown as "N+" (`capped`).
 */
import { ListExecutionsCommand, type ExecutionStatus } from '@aws-sdk/client-sfn';
import { topology } from '../../lib/topology.ts';
import { BUCKET_MINUTES, minuteAttributeNames, minuteCounts } from '../analytics/rollup-format.ts';
import { processorStatuses, type ProcessorStatus } from '../processors/health.ts';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import { allMerchants } from '../store/merchants.ts';
import { countOpenSince, countWaitingForReview } from '../store/open-items.ts';
import { dayRollupAttributes } from '../store/rollups.ts';
import { answerableDisputes, type DisputeRecord } from '../store/disputes.ts';
import { countOpenExceptions } from '../store/reconciliation.ts';
import { listWebhookEvents } from '../store/webhook-events.ts';
import type { Operator } from './model.ts';

/** Caps of the home page's reads. */
export const HOME_LIMITS = {
  /** Merchants looked at (an operator of one merchant: that one). */
  merchants: 200,
  /**
   * Stuck payments counted (the index read with Select COUNT). The counts stop at 100 ("100+"):
   * past that a person needs the list, not the figure, and a count reads every entry it counts
   * (1,000 made the home page read 1,533 items at 100,000 payments).
   */
  openPayments: 100,
  /** Parked webhooks counted per processor. */
  parkedWebhooks: 100,
  /** Reviews waiting counted (the reviews queue's index, read with Select COUNT). */
  reviewsWaiting: 100,
  /** Disputes due soonest read from the deadline index. */
  disputes: 100,
  /** Open reconciliation exceptions counted (their index, read with Select COUNT). */
  openExceptions: 100,
  /** Failed executions counted per state machine. */
  executions: 100,
};

export interface Count {
  count: number;
  /** The count reached its cap: there may be more. */
  capped: boolean;
}

export interface HomeData {
  /** The last hour's 5-minute buckets (start, epoch s), oldest first, and payments created in each. */
  perMinute: { minute: number; payments: number }[];
  lastHour: {
    payments: number;
    approved: number;
    declined: number;
    approvalRate: number | null;
    capped: boolean;
  };
  processors: ProcessorStatus[];
  stuckPayments: Count;
  parkedWebhooks: Count;
  reviewsWaiting: Count;
  /** Disputes whose evidence is due within 7 days, soonest first. */
  disputesDue: DisputeRecord[];
  openExceptions: Count;
  failedExecutions: Count & { byMachine: { machine: string; count: number }[] };
}

const DISPUTE_OPEN = new Set(['needs_response', 'warning_needs_response']);

async function merchantIds(op: Operator): Promise<string[]> {
  if (op.merchant_id) return [op.merchant_id];
  const ids: string[] = [];
  for await (const m of allMerchants()) {
    ids.push(m.id);
    if (ids.length >= HOME_LIMITS.merchants) break;
  }
  return ids;
}

/** `fn` of each item, at most `n` at a time, in order. */
async function mapLimited<T, R>(items: readonly T[], n: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += n) out.push(...(await Promise.all(items.slice(i, i + n).map(fn))));
  return out;
}

/**
 * Payments per 5 minutes and the approval rate of the last hour (the current 5 minutes and the 11
 * before), from the day rollups the stream keeps (docs/routing.md "Approval rollups"): per
 * merchant, those buckets' counters of at most two day items, exact whatever the number of
 * payments.
 */
async function lastHour(
  merchants: string[],
  nowMs: number,
): Promise<Pick<HomeData, 'perMinute' | 'lastHour'>> {
  const bucket = BUCKET_MINUTES * 60;
  const buckets = 60 / BUCKET_MINUTES;
  const start = Math.floor(nowMs / 1000 / bucket) * bucket - (buckets - 1) * bucket;
  const minutes = Array.from({ length: buckets }, (_, i) => (start + i * bucket) * 1000);
  const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);
  const days = [...new Set(minutes.map(dayOf))];
  const names = minutes.flatMap(minuteAttributeNames);
  const items = await mapLimited(merchants, 8, (m) => dayRollupAttributes(m, days, names));
  const perMinute: HomeData['perMinute'] = [];
  let payments = 0;
  let approved = 0;
  let declined = 0;
  for (const ms of minutes) {
    let n = 0;
    for (const byDay of items) {
      const c = minuteCounts(byDay.get(dayOf(ms)), ms);
      n += c.payments;
      approved += c.approved;
      declined += c.declined;
    }
    payments += n;
    perMinute.push({ minute: ms / 1000, payments: n });
  }
  const decided = approved + declined;
  return {
    perMinute,
    lastHour: {
      payments,
      approved,
      declined,
      approvalRate: decided ? Math.round((approved / decided) * 10_000) / 10_000 : null,
      capped: false,
    },
  };
}

/** Open payments quiet for longer than the sweeper waits: stuck, or an outcome nobody knows yet. */
function stuckPayments(op: Operator, nowMs: number): Promise<Count> {
  return countOpenSince(
    'payment',
    nowMs - config.sweepAfterSeconds() * 1000,
    HOME_LIMITS.openPayments,
    op.merchant_id,
  );
}

async function parkedWebhooks(processors: string[]): Promise<Count> {
  const counts = await Promise.all(
    processors.map((p) => listWebhookEvents(p, 'parked', HOME_LIMITS.parkedWebhooks).then((r) => r.length)),
  );
  return {
    count: counts.reduce((a, b) => a + b, 0),
    capped: counts.some((n) => n >= HOME_LIMITS.parkedWebhooks),
  };
}

/** Payments held for a review decision: the reviews queue's own index, counted. */
function reviewsWaiting(op: Operator): Promise<Count> {
  return countWaitingForReview(HOME_LIMITS.reviewsWaiting, op.merchant_id);
}

/**
 * Disputes whose evidence is due within 7 days, soonest first: the deadline index (answerable
 * disputes of every merchant, soonest first) up to the first one due later.
 */
async function disputesDue(op: Operator, nowMs: number): Promise<DisputeRecord[]> {
  const until = nowMs / 1000 + 7 * 86_400;
  const page = await answerableDisputes({
    limit: HOME_LIMITS.disputes,
    merchantId: op.merchant_id,
    maxReads: 10 * HOME_LIMITS.disputes,
    dueBy: until,
  });
  return page.data.filter(
    (d) => DISPUTE_OPEN.has(d.status) && d.evidence_due_by !== null && d.evidence_due_by <= until,
  );
}

async function failedExecutions(nowMs: number): Promise<HomeData['failedExecutions']> {
  const since = nowMs - 86_400_000;
  const byMachine = await Promise.all(
    Object.keys(topology.stateMachines).map(async (machine) => {
      let count = 0;
      for (const status of ['FAILED', 'TIMED_OUT'] as ExecutionStatus[]) {
        const page = await clients.sfn().send(
          new ListExecutionsCommand({
            stateMachineArn: config.stateMachineArn(machine),
            statusFilter: status,
            maxResults: HOME_LIMITS.executions,
          }),
        );
        count += (page.executions ?? []).filter((e) => (e.stopDate?.getTime() ?? nowMs) >= since).length;
      }
      return { machine, count };
    }),
  );
  const count = byMachine.reduce((a, b) => a + b.count, 0);
  return { count, capped: byMachine.some((m) => m.count >= HOME_LIMITS.executions), byMachine };
}

/** Everything the home page shows, for this operator (one merchant's objects when it is limited to one). */
export async function homeData(op: Operator, nowMs: number): Promise<HomeData> {
  const merchants = await merchantIds(op);
  const [hour, processors, stuck, reviews, due, exceptions, executions] = await Promise.all([
    lastHour(merchants, nowMs),
    processorStatuses(nowMs),
    stuckPayments(op, nowMs),
    reviewsWaiting(op),
    disputesDue(op, nowMs),
    countOpenExceptions(HOME_LIMITS.openExceptions, op.merchant_id),
    // Workflows are the platform's: an operator of one merchant is not shown them.
    op.merchant_id ? Promise.resolve({ count: 0, capped: false, byMachine: [] }) : failedExecutions(nowMs),
  ]);
  const parked = op.merchant_id
    ? { count: 0, capped: false }
    : await parkedWebhooks(processors.map((p) => p.name));
  return {
    ...hour,
    processors,
    stuckPayments: stuck,
    parkedWebhooks: parked,
    reviewsWaiting: reviews,
    disputesDue: due,
    openExceptions: exceptions,
    failedExecutions: executions,
  };
}
