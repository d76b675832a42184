/**
 * The sweeper (scheduled): no payment or refund stays stuck because a webhook was lost or a
 * workflow died. It looks at every non-terminal payment and refund that has not moved for a while
 * (listed on the open-items index, lambdas/store/open-items.ts: no table scan),
 * asks the processor for the truth, and applies it through the same guarded transitions and
 * workflow resumptions as the normal path — so running it twice, or alongside a late webhook,
 * changes nothing more. What it cannot resolve it escalates (flag `needs_attention`, an error log
 * line and the run report); it never fails a payment whose outcome is unknown.
 *
 * Per item:
 * - payment `requires_action` quiet for `PAYSTEP_SWEEP_AUTH_AFTER_SECONDS` (default 15 min): the
 *   customer may have authenticated and the webhook been lost → retrieve the payment from its
 *   processor; a decided outcome resumes the waiting workflow (task token, as the webhook would);
 *   a processor that cannot tell yet (Adyen: no read API, no notification stored) leaves it waiting;
 * - payment `processing` flagged `needs_attention` or quiet for `PAYSTEP_SWEEP_AFTER_SECONDS`
 *   (default 15 min) with its workflow no longer running → check the outcome with the processor
 *   (the workflow's own reconcile step);
 * - refund `pending` quiet for the same time → retrieve the refund; a final outcome resumes its
 *   workflow, or — if the workflow is gone — settles/releases directly;
 * - disputes on the disputes area's sweep list (deadline passed, no decision) → refreshed from the
 *   processor (lambdas/disputes/sweep.ts);
 * - a payment whose workflow has ended while it is authorized or waiting for the customer → a new
 *   execution (`<payment>-r<n>`) takes over (re-drive), idempotently;
 * - an idempotency claim whose request died before creating its refund or payment → its
 *   reservation released and the claim dropped (sweepAbandonedClaims);
 * - anything else it cannot resolve → escalated.
 * Every processor is asked through its connector (lambdas/connectors/registry.ts): Stripe's API, or
 * for Adyen the same-key replay of the authorisation and the notification facts paystep stored
 * (test/integration/sweeper-adyen.test.ts).
 * The run report goes to `system/sweeper/<date>/<time>.json` in the reports bucket. Quiet periods
 * are read on every run (lambdas/shared/config.ts). The first run after the index was added lists
 * the open items written before it (backfillOpenIndex, once).
 */
import {
  DescribeExecutionCommand,
  ExecutionAlreadyExists,
  ExecutionDoesNotExist,
  SendTaskSuccessCommand,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import { logger } from '../shared/logger.ts';
import { refundEnded, sweeperEscalations } from '../shared/metrics.ts';
import { processor } from '../connectors/registry.ts';
import { ProcessorRequestError, type RetrieveResult } from '../connectors/types.ts';
import type { Payment } from '../domain/payment.ts';
import { addEvent, annotate, getPayment, getTaskToken, toPayment } from '../store/payments.ts';
import { finishRefund, getRefundItem, release, settle } from '../store/refunds.ts';
import { applyRefundUpdate, normalizeRefundStatus } from '../refunds/updates.ts';
import { handler as reconcile } from '../payments/steps/reconcile.ts';
import { disputesToSweep, refreshDispute } from '../disputes/sweep.ts';
import { dropAbandonedClaim, openClaims, type OpenClaim } from '../store/idempotency.ts';
import { backfillOpenIndex, openItems } from '../store/open-items.ts';

export interface SweepResult {
  examined: number;
  resolved: { id: string; action: string }[];
  escalated: { id: string; reason: string }[];
  untouched: number;
}

async function executionStatus(arn: string | null | undefined): Promise<string> {
  if (!arn) return 'NONE';
  try {
    return (
      (await clients.sfn().send(new DescribeExecutionCommand({ executionArn: arn }))).status ?? 'UNKNOWN'
    );
  } catch (err) {
    if (err instanceof ExecutionDoesNotExist) return 'NONE';
    throw err;
  }
}

/**
 * A refund still pending this long after it was created is escalated (it stays pending: Adyen
 * re-sends a lost notification for 30 days, Stripe answers its status; nothing is guessed).
 */
export const REFUND_PENDING_ESCALATION_SECONDS = 3 * 86_400;

/** Payments in processing, requires_action or authorized, then refunds pending. */
async function* openPaymentsAndRefunds(): AsyncGenerator<Record<string, unknown>> {
  yield* openItems('payment');
  yield* openItems('refund');
}

async function escalate(result: SweepResult, id: string, reason: string, isPayment: boolean): Promise<void> {
  result.escalated.push({ id, reason });
  logger.error('sweeper cannot resolve', { id, reason });
  if (isPayment) {
    await annotate(id, {
      needs_attention: { reason: `sweeper: ${reason}`, since: Math.floor(Date.now() / 1000) },
    });
    await addEvent(id, { type: 'workflow', event: 'needs_attention', reason: `sweeper: ${reason}` });
  }
}

/**
 * Gives a payment whose workflow has ended a new execution of the same state machine (named
 * `<payment>-r<n>`, deterministic, so two sweeps cannot start two). The workflow's steps are
 * idempotent on an already-authorized or waiting payment: it goes straight to waiting for the
 * capture (or the customer), as the dead one would have.
 */
async function redrive(p: Payment, result: SweepResult, why: string): Promise<void> {
  const n = ((p as Payment & { redrives?: number }).redrives ?? 0) + 1;
  const name = `${p.id}-r${n}`;
  const smArn = config.stateMachineArn('payment');
  try {
    await clients.sfn().send(
      new StartExecutionCommand({
        stateMachineArn: smArn,
        name,
        input: JSON.stringify({ payment_id: p.id }),
      }),
    );
  } catch (err) {
    if (!(err instanceof ExecutionAlreadyExists)) {
      await escalate(
        result,
        p.id,
        `${why}; could not start a new workflow (${(err as Error).message})`,
        true,
      );
      return;
    }
  }
  const arn = `${smArn.replace(':stateMachine:', ':execution:')}:${name}`;
  await annotate(p.id, { execution_arn: arn, redrives: n }, ['needs_attention']);
  await addEvent(p.id, { type: 'workflow', event: 're-driven', execution_arn: arn, reason: why });
  result.resolved.push({ id: p.id, action: `re-driven: ${why}` });
}

/** The statuses in which a payment whose workflow has ended can be given a new one (`redrivePayment`). */
export const REDRIVABLE_STATUSES: readonly Payment['status'][] = [
  'processing',
  'authorized',
  'requires_action',
];

/**
 * The sweeper's re-drive of one payment, asked for by a person (the console's executions screen)
 * instead of waiting for the next run and its quiet period: only when the payment's current
 * workflow has ended. Authorized or waiting for the customer → a new execution (`<payment>-r<n>`);
 * processing → its outcome checked with the processor first (`checkUnknownOutcome`), then a new
 * execution if it was authorized there. Anything else is left alone (`untouched`).
 */
export async function redrivePayment(p: Payment, why: string): Promise<SweepResult> {
  const result: SweepResult = { examined: 1, resolved: [], escalated: [], untouched: 0 };
  if (!REDRIVABLE_STATUSES.includes(p.status) || (await executionStatus(p.execution_arn)) === 'RUNNING') {
    result.untouched++;
    return result;
  }
  if (p.status === 'processing') await checkUnknownOutcome(p, true, result);
  else await redrive(p, result, why);
  return result;
}

/**
 * The processor's state of a payment, or undefined when the processor cannot tell yet: Adyen has no
 * API to read a payment, so its connector answers from the notifications paystep stored and says
 * `not_supported` while none has arrived (docs/connectors.md, "Retrieve").
 */
async function knownState(name: string, reference: string): Promise<RetrieveResult | undefined> {
  try {
    return await (await processor(name)).retrieve(reference);
  } catch (err) {
    if (err instanceof ProcessorRequestError && err.code === 'not_supported') return undefined;
    throw err;
  }
}

async function sweepPayment(item: Record<string, unknown>, now: number, result: SweepResult): Promise<void> {
  const p = toPayment(item);
  const age = now - p.updated;
  const flagged = Boolean(item.needs_attention);
  if (p.status === 'authorized') {
    // Waiting for capture is legitimate; only a dead workflow is a problem: give it a new one.
    const exec = await executionStatus(p.execution_arn);
    if (exec !== 'RUNNING') await redrive(p, result, `authorized but its workflow was ${exec}`);
    else result.untouched++;
    return;
  }
  if (p.status === 'requires_action') {
    if (age < config.sweepAuthAfterSeconds() || !p.processor_reference) return void result.untouched++;
    if (!p.processor)
      return escalate(result, p.id, 'waiting for authentication with no processor recorded', true);
    const truth = await knownState(p.processor, p.processor_reference);
    // Nothing known yet (a processor without a read API and no notification): the customer may not
    // have come back; the workflow's own authentication timeout decides, as it would without us.
    if (!truth || truth.status === 'requires_action' || truth.status === 'processing')
      return void result.untouched++;
    const outcome = truth.status === 'requires_payment_method' ? 'failed' : truth.status;
    const { token, kind } = await getTaskToken(p.id);
    if (token && kind === 'authentication') {
      // Exactly what the lost webhook would have done.
      await clients
        .sfn()
        .send(new SendTaskSuccessCommand({ taskToken: token, output: JSON.stringify({ outcome }) }))
        .catch((err: Error) => {
          if (err.name !== 'TaskTimedOut' && err.name !== 'TaskDoesNotExist') throw err;
        });
      result.resolved.push({ id: p.id, action: `resumed after authentication: ${outcome}` });
      await addEvent(p.id, { type: 'workflow', event: 'sweeper resumed', outcome });
      return;
    }
    if ((await executionStatus(p.execution_arn)) !== 'RUNNING') {
      // The workflow died while the customer authenticated: a new one records the outcome.
      await redrive(p, result, 'requires_action without a running workflow');
      return;
    }
    const r = await reconcile({ payment_id: p.id, reason: 'authentication_lapsed' });
    result.resolved.push({ id: p.id, action: `reconciled: ${r.outcome}` });
    return;
  }
  // processing
  if (!flagged && age < config.sweepAfterSeconds()) return void result.untouched++;
  await checkUnknownOutcome(p, flagged, result);
}

/**
 * A `processing` payment whose outcome is unknown (flagged, or quiet with its workflow ended):
 * checked with its processor by the workflow's own reconcile step; a payment authorized there
 * whose workflow has ended gets a new one. Also run for the payments of a processor whose
 * incident is resolved (lambdas/incidents/backlog.ts).
 */
export async function checkUnknownOutcome(p: Payment, flagged: boolean, result: SweepResult): Promise<void> {
  const exec = await executionStatus(p.execution_arn);
  if (exec === 'RUNNING' && !flagged) return void result.untouched++; // e.g. waiting for a review decision
  try {
    const r = await reconcile({ payment_id: p.id, reason: 'unknown_outcome' });
    result.resolved.push({ id: p.id, action: `reconciled: ${r.outcome}` });
    await addEvent(p.id, { type: 'workflow', event: 'sweeper reconciled', outcome: r.outcome });
    if (['authorized', 'requires_action'].includes(String(r.outcome)) && exec !== 'RUNNING') {
      const fresh = await getPayment(p.id);
      if (fresh) await redrive(fresh, result, `${r.outcome} at the processor but its workflow had ended`);
    } else if (flagged) await annotate(p.id, {}, ['needs_attention']);
  } catch (err) {
    await escalate(result, p.id, `outcome still unknown (${(err as Error).message})`, true);
  }
}

async function sweepRefund(item: Record<string, unknown>, now: number, result: SweepResult): Promise<void> {
  const age = now - (item.updated as number);
  if (age < config.sweepAfterSeconds()) return void result.untouched++;
  const id = item.id as string;
  const reference = item.processor_reference as string | null;
  const exec = await executionStatus(item.execution_arn as string);
  if (!reference) {
    if (exec === 'RUNNING') return void result.untouched++;
    // The workflow ended before the processor was asked: nothing was refunded; give the money back.
    await release(item.payment_id as string, id, item.amount as number);
    if (await finishRefund(id, 'failed', 'workflow_ended_before_processor'))
      refundEnded(item.processor as string | undefined, 'failed');
    result.resolved.push({ id, action: 'released (never sent to the processor)' });
    return;
  }
  const adapter = await processor(item.processor as string);
  const truth = await adapter.retrieveRefund(reference);
  const status = normalizeRefundStatus(truth.status);
  if (status === 'pending') {
    // Still pending where the processor says so (or, on Adyen, where no REFUND notification came):
    // after REFUND_PENDING_ESCALATION_SECONDS someone should look, though nothing is guessed.
    const pendingFor = now - (item.created as number);
    if (pendingFor < REFUND_PENDING_ESCALATION_SECONDS) return void result.untouched++;
    const days = Math.floor(pendingFor / 86_400);
    return escalate(
      result,
      id,
      `refund pending at ${String(item.processor)} for ${days} days with no outcome: check it in the processor's dashboard`,
      false,
    );
  }
  if (exec === 'RUNNING') {
    await applyRefundUpdate(
      item.processor as string,
      { id: reference, status, failure_reason: truth.failureReason },
      now,
    );
    result.resolved.push({ id, action: `resumed: ${status}` });
    return;
  }
  const fresh = await getRefundItem(id);
  if (fresh?.status !== 'pending') return void result.untouched++;
  if (status === 'succeeded') await settle(item.payment_id as string, id, item.amount as number);
  else await release(item.payment_id as string, id, item.amount as number);
  if (await finishRefund(id, status, truth.failureReason)) refundEnded(item.processor as string, status);
  result.resolved.push({ id, action: `finished without workflow: ${status}` });
}

/**
 * Idempotency claims whose request died before it produced its object (docs/states.md,
 * "Idempotent requests and crashes"): a refund request that reserved its amount but never wrote
 * the refund gives the amount back; a payment request that never wrote its payment is forgotten.
 * Either way nothing reached the processor (the workflow that calls it starts after the object
 * exists), and the claim is dropped so a retry with the same key runs as a new request. A claim
 * whose object exists is left alone: the object's own sweep takes care of it.
 */
async function sweepAbandonedClaims(nowMs: number, result: SweepResult): Promise<void> {
  const before = nowMs - config.sweepAfterSeconds() * 1000;
  for await (const c of openClaims(before)) {
    if (c.lockedUntil >= Math.floor(nowMs / 1000)) continue; // its request may still be running
    result.examined++;
    try {
      const action = await sweepClaim(c);
      if (action) result.resolved.push({ id: c.resourceId, action });
      else result.untouched++;
    } catch (err) {
      result.escalated.push({ id: c.resourceId, reason: (err as Error).message });
      logger.error('sweeper claim failed', { id: c.resourceId, operation: c.operation, error: err as Error });
    }
  }
}

/** What was done with one abandoned claim, or undefined when it is left as it is. */
async function sweepClaim(c: OpenClaim): Promise<string | undefined> {
  if (c.operation === 'refund.create') {
    if (await getRefundItem(c.resourceId)) return undefined;
    if (!(await dropAbandonedClaim(c))) return undefined; // a retry took it over meanwhile
    const { payment, amount } = c.recoveryData as { payment?: string; amount?: number };
    if (typeof payment === 'string' && typeof amount === 'number')
      await release(payment, c.resourceId, amount);
    return 'abandoned refund request: reservation released, claim dropped';
  }
  if (c.operation === 'payment.create') {
    if (await getPayment(c.resourceId)) return undefined;
    return (await dropAbandonedClaim(c)) ? 'abandoned payment request: claim dropped' : undefined;
  }
  return undefined; // the other requests create nothing: the claim expires with its retention
}

/** One sweep; `now` (epoch seconds) is the clock the ages are measured against. */
export async function sweep(now = Math.floor(Date.now() / 1000)): Promise<SweepResult> {
  const result: SweepResult = { examined: 0, resolved: [], escalated: [], untouched: 0 };
  // Disputes keep their own short list of those to re-check (lambdas/store/disputes.ts).
  for (const { dispute_id: disputeId } of await disputesToSweep()) {
    result.examined++;
    try {
      const outcome = await refreshDispute(disputeId);
      if (outcome === 'applied')
        result.resolved.push({ id: disputeId, action: 'dispute refreshed from the processor' });
      else result.untouched++;
    } catch (err) {
      result.escalated.push({ id: disputeId, reason: (err as Error).message });
      logger.error('sweeper dispute failed', { id: disputeId, error: err as Error });
    }
  }
  await sweepAbandonedClaims(Date.now(), result);
  // Once: items from before the open-items index. A failure must not stop this run's sweep.
  await backfillOpenIndex().then(
    (listed) => listed !== undefined && logger.info('open-items index backfilled', { listed }),
    (err: Error) => logger.error('open-items index backfill failed (retried next run)', { error: err }),
  );
  for await (const item of openPaymentsAndRefunds()) {
    result.examined++;
    try {
      if (item.kind === 'payment') await sweepPayment(item, now, result);
      else await sweepRefund(item, now, result);
    } catch (err) {
      // One stubborn item must not stop the sweep of the others.
      result.escalated.push({ id: String(item.id), reason: (err as Error).message });
      logger.error('sweeper item failed', { id: String(item.id), error: err as Error });
    }
  }
  // One value per sweep, 0 included: the needs-attention alarm clears at the first sweep without any.
  sweeperEscalations(result.escalated.length);
  return result;
}

export async function handler(): Promise<SweepResult> {
  const result = await sweep();
  if (result.resolved.length || result.escalated.length) {
    const at = new Date();
    const key = `system/sweeper/${at.toISOString().slice(0, 10)}/${at.toISOString().slice(11, 19).replace(/:/g, '')}.json`;
    await clients.s3().send(
      new PutObjectCommand({
        Bucket: config.bucketName('reports'),
        Key: key,
        Body: JSON.stringify({ at: at.toISOString(), ...result }, null, 2) + '\n',
        ContentType: 'application/json',
      }),
    );
  }
  logger.info('sweep finished', {
    examined: result.examined,
    resolved: result.resolved.length,
    escalated: result.escalated.length,
  });
  return result;
}
