/**
 * How the Adyen connector reaches Adyen, and what a failed call means.
 *
 * The library builds every URL for Adyen's own hosts (checkout-test.adyen.com/v72/…, or the live
 * prefix) and sends it with `https.request`. `AdyenTransport` is a `ClientInterface` (the library's
 * pluggable HTTP client) that sends the same request — method, path, query, headers, the
 * `Idempotency-Key`, the body — to another base URL: the local simulator (`ADYEN_API_BASE`, e.g.
 * `http://127.0.0.1:12112`; the path is kept, so the simulator serves `/v72/payments`). Unset (in
 * AWS) the library's own client is used and `adyenError` translates its exceptions the same way.
 *
 * What a failure means (lambdas/connectors/types.ts):
 * - no answer (connection refused or reset, DNS, timeout), 5xx, 429, 409, and Adyen's 422 `704`
 *   (the same idempotency key is still being processed): `ProcessorUnavailableError` — the outcome
 *   is unknown, retry with the same idempotency key;
 * - any other 4xx: `AdyenApiError` (a `ProcessorRequestError`) with Adyen's `errorCode`,
 *   `errorType` and the HTTP status — the request itself was refused, do not retry unchanged. A
 *   refusal of a payment is not an error: Adyen answers it with 200 and `resultCode: Refused`,
 *   which the adapter maps to a decline (so do 422s about the card data, see adapter.ts).
 * Nothing here logs a request or response body (they carry card data in test mode).
 */
import type { Client } from '@adyen/api-library';
import {
  neverSent,
  ProcessorRequestError,
  ProcessorUnavailableError,
  ProcessorUnreachableError,
} from '../../connectors/types.ts';

const NAME = 'adyen';

/** The library's pluggable HTTP client interface (not exported by its index). */
export type AdyenClientInterface = NonNullable<ConstructorParameters<typeof Client>[1]>;
type RequestArgs = Parameters<AdyenClientInterface['request']>;

/** Adyen refused the request itself (4xx other than 409/429). */
export class AdyenApiError extends ProcessorRequestError {
  override name = 'ProcessorRequestError';
  readonly status: number;
  /** Adyen's `errorCode`, e.g. `101` (invalid card number), `167` (original pspReference required). */
  readonly errorCode?: string;
  /** Adyen's `errorType`: `validation`, `security`, `configuration`, `internal`… */
  readonly errorType?: string;
  readonly pspReference?: string;
  constructor(
    message: string,
    details: { status: number; errorCode?: string; errorType?: string; pspReference?: string },
    options?: ErrorOptions,
  ) {
    const code =
      details.status === 401 || details.status === 403
        ? 'authentication'
        : details.errorCode
          ? `adyen_${details.errorCode}`
          : `http_${details.status}`;
    super(NAME, message, code, options);
    this.status = details.status;
    this.errorCode = details.errorCode;
    this.errorType = details.errorType;
    this.pspReference = details.pspReference;
  }
}

/** No answer, or an answer that says "not now": the outcome is unknown; retry with the same key. */
export class AdyenUnavailableError extends ProcessorUnavailableError {
  readonly status?: number;
  constructor(message: string, status?: number, options?: ErrorOptions) {
    super(NAME, message, options);
    this.status = status;
  }
}

interface AdyenErrorBody {
  status?: number;
  errorCode?: string;
  message?: string;
  errorType?: string;
  pspReference?: string;
}

function parseErrorBody(text: string | undefined): AdyenErrorBody {
  if (!text) return {};
  try {
    const v = JSON.parse(text) as unknown;
    return v && typeof v === 'object' ? (v as AdyenErrorBody) : {};
  } catch {
    return {};
  }
}

/** An HTTP answer that is not 2xx, as an error. */
export function errorForStatus(status: number, bodyText: string | undefined, operation: string): Error {
  const b = parseErrorBody(bodyText);
  const what = `Adyen ${operation} ${status}${b.errorCode ? ` (${b.errorCode})` : ''}${b.message ? `: ${b.message}` : ''}`;
  // 704: "request already processed or in progress" — the same Idempotency-Key while the first
  // request still runs (paystep's keys and bodies are deterministic per attempt, so this is the
  // case that happens): the outcome is unknown; a retry with the key gets the stored answer.
  if (status >= 500 || status === 429 || status === 409 || String(b.errorCode) === '704')
    return new AdyenUnavailableError(what, status);
  return new AdyenApiError(what, {
    status,
    ...(b.errorCode ? { errorCode: String(b.errorCode) } : {}),
    ...(b.errorType ? { errorType: b.errorType } : {}),
    ...(b.pspReference ? { pspReference: b.pspReference } : {}),
  });
}

/**
 * Any error from a library call → a paystep processor error. Handles this module's errors, the
 * library's `HttpClientException` (a `statusCode`, the body as `responseBody`), its `ApiException`
 * (network errors and timeouts: no status) and plain errors (unknown outcome).
 */
export function adyenError(err: unknown, operation: string): Error {
  if (err instanceof ProcessorRequestError || err instanceof ProcessorUnavailableError) return err;
  const e = err as
    { statusCode?: unknown; responseBody?: string; message?: string; name?: string } | undefined;
  const status = typeof e?.statusCode === 'number' && e.statusCode > 0 ? e.statusCode : undefined;
  if (status !== undefined && (status < 200 || status >= 300)) {
    const out = errorForStatus(status, e?.responseBody, operation);
    (out as { cause?: unknown }).cause = err;
    return out;
  }
  return new AdyenUnavailableError(`Adyen ${operation} failed: ${e?.message ?? String(err)}`, undefined, {
    cause: err,
  });
}

export interface AdyenTransportOptions {
  /** Where to send requests instead of Adyen, e.g. `http://127.0.0.1:12112` (its path is a prefix). */
  baseUrl: string;
  /** Per-request timeout (default 10 000 ms). */
  timeoutMs?: number;
}

/** Sends the library's requests to `baseUrl` with fetch, a timeout, and paystep's error mapping. */
export class AdyenTransport implements AdyenClientInterface {
  private readonly base: URL;
  private readonly timeoutMs: number;

  constructor(options: AdyenTransportOptions) {
    const u = new URL(options.baseUrl);
    if (u.protocol !== 'http:' && u.protocol !== 'https:')
      throw new Error(`AdyenTransport: baseUrl must be an http(s) URL, got ${options.baseUrl}`);
    this.base = u;
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** The URL a library endpoint is sent to: this base's origin and path, then the endpoint's path. */
  target(endpoint: string, params?: unknown): URL {
    const e = new URL(endpoint);
    const prefix = this.base.pathname.replace(/\/+$/, '');
    const out = new URL(`${this.base.origin}${prefix}${e.pathname}`);
    out.search = e.search;
    if (params) {
      const extra = new URLSearchParams(params as ConstructorParameters<typeof URLSearchParams>[0]);
      for (const [k, v] of extra) out.searchParams.append(k, v);
    }
    return out;
  }

  async request(
    ...[endpoint, json, config, isApiKeyRequired, requestOptions = {}]: RequestArgs
  ): Promise<string> {
    const operation = new URL(endpoint).pathname.replace(/^\/v\d+/, '');
    if (isApiKeyRequired && !config.apiKey)
      throw new AdyenApiError(`Adyen ${operation}: no API key configured`, { status: 401 });
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(requestOptions.headers ?? {})) {
      if (v === undefined) continue;
      headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : String(v);
    }
    headers['content-type'] ??= 'application/json';
    headers.accept = 'application/json';
    if (config.apiKey) headers['x-api-key'] = config.apiKey;
    else if (config.username)
      headers.authorization = `Basic ${Buffer.from(`${config.username}:${config.password ?? ''}`).toString('base64')}`;
    if (requestOptions.idempotencyKey) headers['idempotency-key'] = requestOptions.idempotencyKey;
    headers['user-agent'] = config.applicationName
      ? `${config.applicationName} paystep-adyen`
      : 'paystep-adyen';

    const url = this.target(endpoint, requestOptions.params);
    let res: Response;
    try {
      res = await fetch(url, {
        method: requestOptions.method ?? 'POST',
        headers,
        body: typeof json === 'string' ? json : new Uint8Array(json),
        signal: AbortSignal.timeout(this.timeoutMs),
        redirect: 'manual',
      });
    } catch (err) {
      // fetch makes one request (no retries): a refused connection proves nothing reached Adyen.
      const why = neverSent(err);
      if (why) throw new ProcessorUnreachableError(NAME, `Adyen ${operation}: ${why}`, { cause: err });
      const timedOut = (err as Error)?.name === 'TimeoutError' || (err as Error)?.name === 'AbortError';
      throw new AdyenUnavailableError(
        timedOut
          ? `Adyen ${operation}: no answer within ${this.timeoutMs} ms (outcome unknown)`
          : `Adyen ${operation}: ${(err as Error)?.message ?? String(err)} (outcome unknown)`,
        undefined,
        { cause: err },
      );
    }
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      throw new AdyenUnavailableError(
        `Adyen ${operation}: the answer was cut off (outcome unknown)`,
        res.status,
        {
          cause: err,
        },
      );
    }
    if (res.status < 200 || res.status >= 300) throw errorForStatus(res.status, text, operation);
    return text;
  }
}
