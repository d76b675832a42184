/**
 * An HTTP handler whose function runs out of time answers 503 `request_timeout` with Retry-After
 * (lambdas/shared/http.ts): the request's work goes on, and a retry with the same Idempotency-Key
 * gets its result. Any other unexpected error stays a logged 500.
 */
import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import { httpHandler } from '../../lambdas/shared/http.ts';

const event = {
  httpMethod: 'GET',
  path: '/v1/ping',
  resource: '/v1/ping',
  headers: {},
  queryStringParameters: null,
  pathParameters: null,
  body: null,
  isBase64Encoded: false,
  requestContext: { requestId: 'req-1', authorizer: { merchantId: 'mch_1' } },
} as unknown as APIGatewayProxyEvent;

const context = (remainingMs: number) =>
  ({
    functionName: 'test',
    awsRequestId: 'aws-1',
    getRemainingTimeInMillis: () => remainingMs,
  }) as unknown as Context;

test('a handler that outlives its function answers 503 request_timeout with Retry-After', async () => {
  const slow = httpHandler(async () => {
    await new Promise((r) => setTimeout(r, 500));
    return { status: 200, body: { ok: true } };
  });
  const res = await slow(event, context(60));
  expect(res.statusCode).toBe(503);
  expect(res.headers).toMatchObject({ 'retry-after': '1' });
  expect(JSON.parse(res.body).error).toMatchObject({ type: 'api_error', code: 'request_timeout' });
});

test('any other unexpected error is still a 500 internal_error', async () => {
  const broken = httpHandler(async () => {
    throw new Error('boom');
  });
  const res = await broken(event, context(5000));
  expect(res.statusCode).toBe(500);
  expect(JSON.parse(res.body).error.code).toBe('internal_error');
});
