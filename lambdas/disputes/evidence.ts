/**
 * POST /v1/disputes/{id}/evidence {evidence: {...neutral evidence fields}, submit?: true} — forwards
 * the evidence to the dispute's processor through its dispute connector, which maps the neutral
 * schema to the processor's own (docs/disputes.md) (`submit: false` stages it without sending it to
 * the issuer).
 * Submitted evidence moves the dispute to under_review and resumes its workflow. Idempotency-Key
 * optional (evidence can be submitted once anyway). The work is lambdas/disputes/service.ts's,
 * shared with the ops console.
 */
import { httpHandler } from '../shared/http.ts';
import { pathId } from '../shared/input.ts';
import { idempotent, readIdempotencyKey, replayHeaders, requestHash } from '../store/idempotency.ts';
import { presentDispute } from './present.ts';
import { submitDisputeEvidence } from './service.ts';
import { parseEvidence } from './validation.ts';

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
      const after = await submitDisputeEvidence(req.merchantId, id, body, hash, progress);
      return { status: 200, body: presentDispute(after) };
    },
    { operation: 'dispute.evidence' },
  );
  return { status: response.status, body: response.body, headers: replayHeaders(replayed) };
});
