/**
 * DynamoDB without sockets inside the runtime's process.
 *
 * The handlers' SDK clients and the local DynamoDB run in one process, yet each call used to cross
 * two HTTP hops: SDK → proxy (lib/local/dynamodb.ts) → dynalite, each with its sockets, HTTP
 * parsing and writes (about a quarter of the runtime's CPU, docs/performance.md). Both hops become
 * function calls here, and nothing else changes:
 *
 * - `InProcessDynamoHandler` is an SDK request handler (the Smithy HttpHandler interface:
 *   `handle(request)` → `{ response }`). It hands the serialized request — the bytes the SDK would
 *   have sent — to the proxy's request function (`LocalDynamo.handleRequest`: permissions, the batch
 *   split) and answers with the reply's status, headers and bytes. The SDK serializes, retries and
 *   parses exactly as over HTTP; the calling function is the one whose invocation the call runs in
 *   (lib/local/permissions.ts `currentFunction`), as the socket told before.
 * - `LocalSigV4Signer` signs those requests without the cryptography: the headers SigV4 adds
 *   (`x-amz-date`, an `Authorization` of the same shape, with the caller's access key, date, region
 *   and service) and a placeholder signature. Nothing local checks a signature (dynalite checks the
 *   header's shape, which this keeps; the caller is known from its invocation, not its key), and
 *   SigV4's HMAC chain and SHA-256 of every body were 7 % of the runtime's main thread in the
 *   checkout bench's profile. A client gets it only together with the in-process handler: in AWS,
 *   or in a process without a runtime, requests are signed by the SDK's own signer.
 * - `callDynalite` (lib/local/dynalite.ts) runs dynalite's own HTTP request handler (its validation,
 *   expression parsing, condition checks and error bodies: the same answers as on its port) on an
 *   in-memory request and response instead of a socket, in the thread dynalite runs in (a worker
 *   thread by default: lib/local/dynamodb-worker.ts).
 *
 * The runtime registers its handler for its DynamoDB endpoint in a process-global table
 * (`registerInProcess`); `clients.ddb()` (lambdas/shared/aws.ts) uses the handler registered for
 * AWS_ENDPOINT_URL_DYNAMODB, if any, and HTTP otherwise: a process without a runtime in it (another
 * CLI process, a test's own client, AWS) never finds one.
 */
import type http from 'node:http';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { HttpHandlerOptions, HttpRequest, HttpResponse } from '@smithy/types';
import type { Reply } from './dynalite.ts';
import { currentFunction } from './permissions.ts';

/** What the SDK handler needs of the local DynamoDB (LocalDynamo). */
export interface InProcessTarget {
  /** False once the service stops taking requests. */
  accepting(): boolean;
  handleRequest(r: {
    method: string;
    url: string;
    headers: http.OutgoingHttpHeaders;
    body: Buffer;
    caller: string | undefined;
  }): Promise<Reply>;
}

function bodyBytes(body: unknown): Buffer {
  if (body === undefined || body === null) return Buffer.alloc(0);
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  throw new Error('in-process DynamoDB handler: streaming request bodies are not supported');
}

/** The local DynamoDB serving each endpoint from this process (shared by every copy of this module). */
const TARGETS = Symbol.for('paystep.local.dynamodbTargets');
/** Process-global, shared with lambdas/shared/aws.ts (which must not import lib/local). */
const REGISTRY = Symbol.for('paystep.local.requestHandlers');

function globalMap<V>(key: symbol): Map<string, V> {
  const g = globalThis as unknown as Record<symbol, Map<string, V> | undefined>;
  return (g[key] ??= new Map<string, V>());
}

/**
 * An SDK request handler for one endpoint: while a local DynamoDB in this process serves that
 * endpoint, requests are handed to it directly; otherwise (stopped, or served by another process
 * now) they go over HTTP as usual. Looked up per request, so a client outlives a runtime restarted
 * on the same endpoint, as it would over HTTP.
 */
export class InProcessDynamoHandler {
  readonly metadata = { handlerProtocol: 'in-process' };
  /** The signer for clients that use this handler (lambdas/shared/aws.ts). */
  readonly signer = new LocalSigV4Signer();
  readonly endpoint: string;
  private http?: NodeHttpHandler;

  constructor(endpoint: string) {
    this.endpoint = endpoint;
  }

  async handle(request: HttpRequest, options?: HttpHandlerOptions): Promise<{ response: HttpResponse }> {
    const target = globalMap<InProcessTarget>(TARGETS).get(this.endpoint);
    if (!target?.accepting()) {
      this.http ??= new NodeHttpHandler();
      return this.http.handle(request as Parameters<NodeHttpHandler['handle']>[0], options);
    }
    const headers: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(request.headers)) headers[k.toLowerCase()] = v;
    const query = Object.entries(request.query ?? {})
      .flatMap(([k, v]) =>
        (Array.isArray(v) ? v : [v]).map((x) =>
          x === null ? encodeURIComponent(k) : `${encodeURIComponent(k)}=${encodeURIComponent(x)}`,
        ),
      )
      .join('&');
    const reply = await target.handleRequest({
      method: request.method,
      url: `${request.path || '/'}${query ? `?${query}` : ''}`,
      headers,
      body: bodyBytes(request.body),
      caller: currentFunction(),
    });
    const responseHeaders: Record<string, string> = {};
    for (const [k, v] of Object.entries(reply.headers))
      if (v !== undefined) responseHeaders[k] = Array.isArray(v) ? v.join(', ') : String(v);
    responseHeaders['content-length'] = String(reply.body.length);
    return {
      response: { statusCode: reply.status, reason: undefined, headers: responseHeaders, body: reply.body },
    };
  }

  updateHttpClientConfig(): void {
    // nothing to configure in-process; the HTTP fallback keeps its defaults
  }

  httpHandlerConfigs(): Record<string, never> {
    return {};
  }

  destroy(): void {
    this.http?.destroy();
  }
}

/** What SigV4 signing needs of the request and the caller's credentials (Smithy's HttpSigner). */
interface SignableRequest {
  headers: Record<string, string>;
}
interface SigningIdentity {
  accessKeyId?: string;
  sessionToken?: string;
}
interface SigningProperties {
  signingRegion?: string;
  signingName?: string;
}

/**
 * A SigV4-shaped signature without the cryptography, for requests that never leave this process
 * (see the header). The request keeps every header the SDK's signer would add but the signature's
 * value, which no local service verifies.
 */
export class LocalSigV4Signer {
  async sign<R extends SignableRequest>(
    request: R,
    identity: SigningIdentity,
    props: SigningProperties = {},
  ): Promise<R> {
    const amzDate = new Date().toISOString().replace(/[-:]|\.\d{3}/g, '');
    const scope = `${amzDate.slice(0, 8)}/${props.signingRegion ?? 'local'}/${props.signingName ?? 'dynamodb'}/aws4_request`;
    request.headers['x-amz-date'] = amzDate;
    if (identity.sessionToken) request.headers['x-amz-security-token'] = identity.sessionToken;
    request.headers['authorization'] =
      `AWS4-HMAC-SHA256 Credential=${identity.accessKeyId ?? 'local'}/${scope}, ` +
      `SignedHeaders=host;x-amz-date;x-amz-target, Signature=${'0'.repeat(64)}`;
    return request;
  }
}

/** `target` serves `endpoint` in this process: clients created for it from now on skip the socket. */
export function registerInProcess(endpoint: string, target: InProcessTarget): void {
  globalMap<InProcessTarget>(TARGETS).set(endpoint, target);
  const handlers = globalMap<unknown>(REGISTRY);
  if (!handlers.has(endpoint)) handlers.set(endpoint, new InProcessDynamoHandler(endpoint));
}

/** `target` stopped serving `endpoint` (clients already created fall back to HTTP). */
export function unregisterInProcess(endpoint: string, target: InProcessTarget): void {
  const targets = globalMap<InProcessTarget>(TARGETS);
  if (targets.get(endpoint) !== target) return;
  targets.delete(endpoint);
  globalMap<unknown>(REGISTRY).delete(endpoint);
}
