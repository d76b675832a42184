/**
 * Answering a dispute, shared by the API (POST /v1/disputes/{id}/evidence|accept) and the ops
 * console (/console/disputes/{id}): the checks, the processor call with its idempotency key and
 * recovery point, the payment's timeline entry and applying the processor's answer. The callers
 * wrap it in `idempotent` (lambdas/store/idempotency.ts), so a retry after a crash resumes at the
 * processor call and the processor replays its answer for the same key: evidence is submitted
 * once, a dispute accepted once.
 */
import { createHash } from 'node:crypto';
import type { RequestProgress } from '../store/idempotency.ts';
import { addDisputeTimelineEntry, annotateDispute, type DisputeRecord } from '../store/disputes.ts';
import { disputes } from '../connectors/registry.ts';
import { answerableDispute, applyProcessorResponse, atProcessor, merchantDispute } from './respond.ts';
import { checkEvidenceFor, type EvidenceRequest } from './validation.ts';

/**
 * Sends `body`'s evidence for the merchant's dispute to its processor (`submit: false` stages it);
 * `requestHash` identifies the request (the same evidence is one submission at the processor,
 * whatever the retries). Returns the dispute as it is afterwards.
 */
export async function submitDisputeEvidence(
  merchantId: string,
  id: string,
  body: EvidenceRequest,
  requestHash: string,
  progress: Pick<RequestProgress, 'recoveryPoint' | 'checkpoint'>,
): Promise<DisputeRecord> {
  // Resumed after a crash once the evidence was sent: the dispute may have moved on because of
  // it, so it is not checked again; the processor replays its answer for the same key.
  const d =
    progress.recoveryPoint === 'at_processor'
      ? await merchantDispute(merchantId, id)
      : await answerableDispute(merchantId, id, 'answered with evidence');
  const connector = await disputes(d.processor);
  checkEvidenceFor(d.processor, connector.evidence, body);
  const key = `${d.id}:evidence:${createHash('sha256').update(requestHash).digest('hex').slice(0, 32)}`;
  const evidence = body.evidence;
  if (progress.recoveryPoint !== 'at_processor') await progress.checkpoint('at_processor');
  const facts = await atProcessor(() =>
    connector.submitEvidence(d.processor_reference, evidence, body.submit, key),
  );
  await addDisputeTimelineEntry(d.payment_id, {
    event: body.submit ? 'evidence_submitted' : 'evidence_staged',
    dispute: d.id,
    fields: Object.keys(evidence).sort(),
  });
  return applyProcessorResponse(d, facts, 'api.evidence');
}

/**
 * Accepts the merchant's dispute at its processor: a chargeback becomes `accepted` (lost), an
 * inquiry `warning_closed` where the processor can close one. Irreversible.
 */
export async function acceptDispute(
  merchantId: string,
  id: string,
  progress: Pick<RequestProgress, 'recoveryPoint' | 'checkpoint'>,
): Promise<DisputeRecord> {
  // Resumed after a crash once the close was sent: not checked again (the dispute may be
  // `lost`/`accepted` because of it); the processor replays its answer for the same key.
  const d =
    progress.recoveryPoint === 'at_processor'
      ? await merchantDispute(merchantId, id)
      : await answerableDispute(merchantId, id, 'accepted');
  const connector = await disputes(d.processor);
  // Marked first, so that the processor's `lost` reads as `accepted` whichever arrives first:
  // this call's answer or the processor's webhook that closes the dispute.
  await annotateDispute(d.id, { accepted_by_merchant: true });
  if (progress.recoveryPoint !== 'at_processor') await progress.checkpoint('at_processor');
  const facts = await atProcessor(() => connector.accept(d.processor_reference, `${d.id}:accept`)).catch(
    async (err: unknown) => {
      // Not accepted (or not known to be): a later `lost` reads as lost. A retry marks it again, and
      // the processor replays the first close for the same idempotency key.
      await annotateDispute(d.id, { accepted_by_merchant: false });
      throw err;
    },
  );
  await addDisputeTimelineEntry(d.payment_id, { event: 'accepted', dispute: d.id });
  return applyProcessorResponse(d, facts, 'api.accept');
}
