/**
 * Thin HTTP handlers (docs/architecture.md): `httpHandler(fn)` parses the API Gateway proxy event
 * into an `ApiRequest` (merchant from the authorizer, JSON body, path and query parameters), calls
 * `fn`, and shapes the response. One error middleware maps ApiError to the API's error JSON and
 * anything unexpected to a generic 500 (logged with its stack, never returned).
 *
 * Every request is bounded before `fn` sees it (lambdas/shared/input.ts, docs/api.md "Limits"):
 * body size, UTF-8 JSON only, nesting depth, forbidden keys, card numbers anywhere in the body or
 * the query string, and path parameters shaped like ids. So nothing a handler hashes, validates
 * or stores is unbounded.
 */
import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { ApiError } from './errors.ts';
import {
  checkJsonContentType,
  checkQuery,
  isPlausiblePathParam,
  MAX_BODY_BYTES,
  parseJsonBody,
} from './input.ts';
import { logger } from './logger.ts';

export interface ApiRequest {
  merchantId: string;
  /** The ops key's name on /ops routes (lambdas/auth/authorizer.ts); '' on merchant routes. */
  opsKeyName: string;
  method: string;
  path: string;
  pathParams: Record<string, string>;
  query: Record<string, string>;
  headers: Record<string, string>;
  body: unknown;
  requestId: string;
}

export interface ApiResult {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function parseRequest(event: APIGatewayProxyEvent): ApiRequest {
  // Object.fromEntries defines own properties: a `__proto__` header or query name is kept as data,
  // never assigned to the prototype.
  const headers: Record<string, string> = Object.fromEntries(
    Object.entries(event.headers ?? {})
      .filter((e): e is [string, string] => e[1] !== undefined)
      .map(([k, v]) => [k.toLowerCase(), v]),
  );
  let body: unknown = undefined;
  if (event.body !== null && event.body !== undefined && event.body !== '') {
    let raw: string;
    if (event.isBase64Encoded) {
      const bytes = Buffer.from(event.body, 'base64');
      if (bytes.length > MAX_BODY_BYTES) throw bodyTooLarge();
      try {
        raw = utf8.decode(bytes);
      } catch {
        throw new ApiError(400, 'invalid_request_error', 'invalid_json', 'Request body is not valid UTF-8.');
      }
    } else raw = event.body;
    if (Buffer.byteLength(raw) > MAX_BODY_BYTES) throw bodyTooLarge();
    checkJsonContentType(headers['content-type'] ?? '');
    body = parseJsonBody(raw);
  }
  const authorizer = event.requestContext?.authorizer as { merchantId?: string; opsKeyName?: string } | null;
  const merchantId = authorizer?.merchantId ?? '';
  const query: Record<string, string> = Object.fromEntries(
    Object.entries(event.queryStringParameters ?? {}).filter(
      (e): e is [string, string] => e[1] !== undefined,
    ),
  );
  checkQuery(query);
  const pathParams: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [k, v] of Object.entries(event.pathParameters ?? {})) {
    if (v === undefined) continue;
    // Whatever the route, a path parameter that cannot be an id never reaches a handler or a store.
    if (!isPlausiblePathParam(v))
      throw new ApiError(
        404,
        'not_found',
        'resource_missing',
        'No such object: the id in the path is malformed.',
        k,
      );
    pathParams[k] = v;
  }
  return {
    merchantId,
    opsKeyName: authorizer?.opsKeyName ?? '',
    method: event.httpMethod,
    path: event.path,
    pathParams,
    query,
    headers,
    body,
    requestId: event.requestContext?.requestId ?? '',
  };
}

const bodyTooLarge = () =>
  new ApiError(
    413,
    'invalid_request_error',
    'body_too_large',
    `Request body exceeds ${MAX_BODY_BYTES >> 20} MB.`,
  );

export function json(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): APIGatewayProxyResult {
  return {
    statusCode: status,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  };
}

const errorMapper = (): middy.MiddlewareObj<APIGatewayProxyEvent, APIGatewayProxyResult> => ({
  onError: async (request) => {
    const err = request.error;
    if (err instanceof ApiError) {
      request.response = json(err.status, err.toJSON());
      return;
    }
    // The function's time ran out (middy answers just before Lambda would cut it off), e.g. under
    // load: not the client's fault and not a bug. What the request started goes on (workflows,
    // idempotency claims), so a retry with the same Idempotency-Key gets its result.
    if (
      (err as Error | undefined)?.name === 'TimeoutError' &&
      ((err as Error).cause as { package?: string } | undefined)?.package === '@middy/core'
    ) {
      logger.warn('request timed out', { error: err as Error });
      request.response = json(
        503,
        {
          error: {
            type: 'api_error',
            code: 'request_timeout',
            message:
              'The request did not finish in time. Retry it with the same Idempotency-Key: what it started goes on, and the retry returns its result.',
          },
        },
        { 'retry-after': '1' },
      );
      return;
    }
    logger.error('unhandled error', { error: err as Error });
    request.response = json(500, {
      error: {
        type: 'api_error',
        code: 'internal_error',
        message: 'An internal error occurred; it has been logged.',
      },
    });
  },
});

export function httpHandler(fn: (req: ApiRequest, context: Context) => Promise<ApiResult>) {
  return middy<APIGatewayProxyEvent, APIGatewayProxyResult>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(errorMapper())
    .handler(async (event, context) => {
      const req = parseRequest(event);
      logger.appendKeys({ merchantId: req.merchantId || undefined, requestId: req.requestId });
      const res = await fn(req, context);
      return json(res.status, res.body, res.headers);
    });
}
