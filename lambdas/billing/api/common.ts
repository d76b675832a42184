/**
 * What the billing API handlers share: idempotent POSTs (Idempotency-Key exactly as POST
 * /v1/payments reads it: same key and body → the stored response, replayed) and list bodies.
 * Path ids go through the shared `pathId` check (lambdas/shared/input.ts) in each handler.
 */
import { ApiError } from '../../shared/errors.ts';
import type { ApiRequest, ApiResult } from '../../shared/http.ts';
import {
  idempotent,
  readIdempotencyKey,
  replayHeaders,
  requestHash,
  type RequestProgress,
} from '../../store/idempotency.ts';
import type { CursorPage } from '../../store/pages.ts';
import { newBillingId, type BillingPrefix } from '../model.ts';

/**
 * Runs a POST once per Idempotency-Key (required when the request moves money). `fn` gets the id
 * of what the request creates (stable across retries of the same request).
 */
export async function idempotentPost(
  req: ApiRequest,
  operation: string,
  required: boolean,
  fn: (resourceId: string, progress: RequestProgress) => Promise<ApiResult>,
  prefix?: BillingPrefix,
): Promise<ApiResult> {
  const key = readIdempotencyKey(req.headers, required);
  const { response, replayed } = await idempotent(
    req.merchantId,
    key,
    requestHash('POST', req.path, req.body),
    async (id, progress) => {
      const r = await fn(id, progress);
      return { status: r.status, body: r.body };
    },
    { operation, newResourceId: () => (prefix ? newBillingId(prefix) : '') },
  );
  return { status: response.status, body: response.body, headers: replayHeaders(replayed) };
}

export const listBody = <T>(url: string, page: CursorPage<T>, present: (t: T) => unknown) => ({
  object: 'list',
  url,
  data: page.data.map(present),
  has_more: page.hasMore,
  ...(page.nextStartingAfter ? { next_starting_after: page.nextStartingAfter } : {}),
});

export const methodNotAllowed = () => new ApiError(404, 'not_found', 'resource_missing', 'No such route.');
