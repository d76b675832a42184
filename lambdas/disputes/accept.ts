/**
 * POST /v1/disputes/{id}/accept — the merchant accepts the dispute at its processor (its dispute
 * connector's `accept`): a chargeback becomes `accepted` (lost; the payment → charged_back), an
 * inquiry `warning_closed` where the processor can close one.
 * Irreversible, so Idempotency-Key is required.
 */
import { httpHandler } from '../shared/http.ts';
import { pathId } from '../shared/input.ts';
import { idempotent, readIdempotencyKey, replayHeaders, requestHash } from '../store/idempotency.ts';
import { addDisputeTimelineEntry, annotateDispute } from '../store/disputes.ts';
import { presentDispute } from './present.ts';
import { answerableDispute, applyProcessorResponse, atProcessor, merchantDispute } from './respond.ts';
import { disputes } from '../connectors/registry.ts';

export const handler = httpHandler(async (req) => {
  const id = pathId(req, 'dispute');
  const idemKey = readIdempotencyKey(req.headers, true);
  const { response, replayed } = await idempotent(
    req.merchantId,
    idemKey,
    requestHash('POST', `/v1/disputes/${id}/accept`, req.body ?? null),
    async (_id, progress) => {
      // Resumed after a crash once the close was sent: not checked again (the dispute may be
      // `lost`/`accepted` because of it); the processor replays its answer for the same key.
      const d =
        progress.recoveryPoint === 'at_processor'
          ? await merchantDispute(req.merchantId, id)
          : await answerableDispute(req.merchantId, id, 'accepted');
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
      const after = await applyProcessorResponse(d, facts, 'api.accept');
      return { status: 200, body: presentDispute(after) };
    },
    { operation: 'dispute.accept' },
  );
  return { status: response.status, body: response.body, headers: replayHeaders(replayed) };
});
