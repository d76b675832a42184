/**
 * paystep's errors. Every error paystep defines extends `PaystepError`: a `name` of its own (what
 * logs, the workflows' Retry and Catch, and tests match on), an optional machine-readable `code`,
 * and the error that led to it as the standard `cause` (ErrorOptions), so a wrapped SDK or
 * processor error is kept, never flattened into a message.
 *
 * The API's errors (docs/api.md, "Errors"): `{"error": {"type", "code", "message", "param"?}}`.
 * Domain code throws these; one middleware (lambdas/shared/http.ts) turns them into responses.
 * Anything else becomes a 500 with a generic message: never a stack trace.
 */
export interface PaystepErrorOptions extends ErrorOptions {
  /** Machine-readable, stable (snake_case): what callers branch on rather than the message. */
  code?: string;
}

export class PaystepError extends Error {
  override name = 'PaystepError';
  readonly code?: string;

  constructor(message: string, options: PaystepErrorOptions = {}) {
    const { code, ...errorOptions } = options;
    super(message, 'cause' in errorOptions ? errorOptions : undefined);
    this.code = code;
  }
}

export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'not_found'
  | 'conflict'
  | 'idempotency_error'
  | 'card_error'
  | 'api_error';

export class ApiError extends PaystepError {
  override name = 'ApiError';
  readonly status: number;
  readonly type: ErrorType;
  override readonly code: string;
  readonly param?: string;

  constructor(
    status: number,
    type: ErrorType,
    code: string,
    message: string,
    param?: string,
    options?: ErrorOptions,
  ) {
    super(message, { ...options, code });
    this.status = status;
    this.type = type;
    this.code = code;
    this.param = param;
  }

  toJSON() {
    return {
      error: {
        type: this.type,
        code: this.code,
        message: this.message,
        ...(this.param ? { param: this.param } : {}),
      },
    };
  }
}

export const invalidRequest = (code: string, message: string, param?: string) =>
  new ApiError(400, 'invalid_request_error', code, message, param);

export const notFound = (what: string, id: string) =>
  new ApiError(404, 'not_found', 'resource_missing', `No such ${what}: '${id}'`, 'id');

export const unauthorized = (message = 'Invalid API key provided.') =>
  new ApiError(401, 'authentication_error', 'invalid_api_key', message);
