/**
 * Thin HTTP handlers (DESIGN.md §5): `httpHandler(fn)` parses the API Gateway proxy event into an
 * `ApiRequest` (merchant from the authorizer, JSON body, path and query parameters), calls `fn`,
 * and shapes the response. One error middleware maps ApiError to the API's error JSON and
 * anything unexpected to a generic 500 (logged with its stack, never returned).
 */
import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { ApiError, invalidRequest } from './errors.ts';
import { logger } from './logger.ts';

export interface ApiRequest {
  merchantId: string;
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

const MAX_BODY_BYTES = 1 << 20;

export function parseRequest(event: APIGatewayProxyEvent): ApiRequest {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(event.headers ?? {})) if (v !== undefined) headers[k.toLowerCase()] = v;
  let body: unknown = undefined;
  if (event.body !== null && event.body !== undefined && event.body !== '') {
    const raw = event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
    if (Buffer.byteLength(raw) > MAX_BODY_BYTES)
      throw invalidRequest('body_too_large', 'Request body exceeds 1 MB.');
    const type = (headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json')
      throw invalidRequest(
        'unsupported_content_type',
        'Send request bodies as JSON with Content-Type: application/json.',
      );
    try {
      body = JSON.parse(raw);
    } catch {
      throw invalidRequest('invalid_json', 'Request body is not valid JSON.');
    }
  }
  const merchantId = (event.requestContext?.authorizer as { merchantId?: string } | null)?.merchantId ?? '';
  const query: Record<string, string> = {};
  for (const [k, v] of Object.entries(event.queryStringParameters ?? {})) if (v !== undefined) query[k] = v;
  const pathParams: Record<string, string> = {};
  for (const [k, v] of Object.entries(event.pathParameters ?? {})) if (v !== undefined) pathParams[k] = v;
  return {
    merchantId,
    method: event.httpMethod,
    path: event.path,
    pathParams,
    query,
    headers,
    body,
    requestId: event.requestContext?.requestId ?? '',
  };
}

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
