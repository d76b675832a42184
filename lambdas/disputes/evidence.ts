/**
 * POST /v1/disputes/{id}/evidence {evidence: {...neutral evidence fields}, submit?: true} — forwards
 * the evidence to the dispute's processor through its dispute connector, which maps the neutral
 * schema to the processor's own (docs/disputes.md) (`submit: false` stages it without sending it to
 * the issuer).
 * Submitted evidence moves the dispute to under_review and resumes its workflow. Idempotency-Key
 * optional (evidence can be submitted once anyway).
 */
import { createHash } from 'node:crypto';
import { httpHandler } from '../shared/http.ts';
import { pathId } from '../shared/input.ts';
import { idempotent, readIdempotencyKey, replayHeaders, requestHash } from '../store/idempotency.ts';
import { addDisputeTimelineEntry } from '../store/disputes.ts';
import { presentDispute } from './present.ts';
import { answerableDispute, applyProcessorResponse, atProcessor, merchantDispute } from './respond.ts';
import { disputes } from '../connectors/registry.ts';
import { checkEvidenceFor, parseEvidence } from './validation.ts';

export const handler = httpHandler(async (req) => {
  const id = pathId(req, 'dispute');
  const idemKey = readIdempotencyKey(req.headers, false);
  const hash = requestHash('POST', `/v1/disputes/${id}/evidence`, req.body);
  const { response, replayed } = await idempotent(
    req.merchantId,
    idemKey,
    hash,
    async (_id, progress) => {
      const body = parseEvidence(req.body);
      // Resumed after a crash once the evidence was sent: the dispute may have moved on because of
      // it, so it is not checked again; the processor replays its answer for the same key.
      const d =
        progress.recoveryPoint === 'at_processor'
          ? await merchantDispute(req.merchantId, id)
          : await answerableDispute(req.merchantId, id, 'answered with evidence');
      const connector = await disputes(d.processor);
      checkEvidenceFor(d.processor, connector.evidence, body);
      // The same evidence for the same dispute is one submission at the processor, whatever the retries.
      const key = `${d.id}:evidence:${createHash('sha256').update(hash).digest('hex').slice(0, 32)}`;
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
      const after = await applyProcessorResponse(d, facts, 'api.evidence');
      return { status: 200, body: presentDispute(after) };
    },
    { operation: 'dispute.evidence' },
  );
  return { status: response.status, body: response.body, headers: replayHeaders(replayed) };
});
