/**
 * Local API Gateway: HTTP requests → REST API (v1) proxy events for the same handlers, behind the
 * same request authorizer; proxy results → HTTP responses. One log line per request.
 *
 * What it reproduces from API Gateway: route matching on path templates, the REQUEST authorizer
 * with its policy and context (cached per Authorization header for the topology's TTL), 401 for
 * a missing or rejected key, 10 MB payload limit, 29 s integration timeout, and gateway errors in
 * the API's own error shape (the CDK stack configures the same gateway responses).
 *
 * Every refusal at the gateway, including the ones Node's HTTP parser makes before there is a
 * request (oversized request line or headers: 431; malformed HTTP: 400; too slow: 408), is a JSON
 * error in that shape. When the gateway will not read the rest of a request (413, parser errors)
 * it says `Connection: close` and closes gracefully: it sends the response and its FIN, then keeps
 * discarding what the client still sends (for LINGER_MS at most), so the client reads the whole
 * response instead of a connection reset. Bodies must be UTF-8 (docs/api.md, "Errors").
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import type { APIGatewayAuthorizerResult, APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import type { RouteDef, Topology } from '../topology.ts';
import type { Logger } from './log.ts';
import { contentTypeCharset } from '../../lambdas/shared/input.ts';
import { containsCardNumber } from '../../lambdas/domain/pan.ts';

const MAX_PAYLOAD = 10 * 1024 * 1024;
/** Request line and headers together (Node's default, set explicitly: NODE_OPTIONS can change it). */
const MAX_HEADER_SIZE = 16 * 1024;
const INTEGRATION_TIMEOUT_MS = 29_000;
/** How long a connection being closed keeps discarding what the client still sends. */
const LINGER_MS = 2000;
const STAGE = 'prod';
const API_ID = 'local';

interface CompiledRoute extends RouteDef {
  regex: RegExp;
  names: string[];
}

export interface GatewayOptions {
  topology: Pick<Topology, 'routes' | 'authorizer'>;
  invoke: (fn: string, event: unknown) => Promise<unknown>;
  logger: Logger;
}

const errorBody = (type: string, code: string, message: string) =>
  JSON.stringify({ error: { type, code, message } });

const tooLarge = () => errorBody('invalid_request_error', 'body_too_large', 'Request body exceeds 10 MB.');

/** Refusals made before there is a request (Node's HTTP parser), by error code. */
function clientErrorResponse(code: string | undefined): { status: number; code: string; message: string } {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return {
        status: 431,
        code: 'headers_too_large',
        message: 'The request line and headers exceed 16 KB (a long query string counts).',
      };
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return { status: 413, code: 'body_too_large', message: 'Chunk extensions are too large.' };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, code: 'request_timeout', message: 'The request was not received in time.' };
    default:
      return { status: 400, code: 'malformed_request', message: 'Malformed HTTP request.' };
  }
}

/** Charsets a body may declare; a body is always read as UTF-8. */
const UTF8 = new Set(['utf-8', 'utf8']);
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * A request path as responses and logs show it: a path that holds what looks like a card number
 * is never echoed (paystep never writes a PAN anywhere, docs/api.md).
 */
const shownPath = (path: string) =>
  containsCardNumber(decodeURIComponentSafe(path)) ? '[path withheld: it contains a card number]' : path;

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The charset parameter of a Content-Type (the API's own parser: lambdas/shared/input.ts). */
const charsetOf = (contentType: string | undefined) => contentTypeCharset(contentType ?? '');

/**
 * Ends a connection without losing the response written to it: FIN after the response, then what
 * the client still sends is read and discarded until it closes its side (or LINGER_MS pass).
 * Closing at once with unread data would send a reset, which can destroy the response in flight.
 */
function closeGracefully(socket: net.Socket): void {
  if (socket.destroyed) return;
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.once('end', () => socket.destroy());
  socket.on('error', () => socket.destroy());
  socket.end();
  socket.resume();
}

/** A body that is larger than the gateway takes. */
class PayloadTooLarge extends Error {
  override name = 'PayloadTooLarge';
}
/** The client went away before sending the whole request. */
class RequestAborted extends Error {
  override name = 'RequestAborted';
}

/** Reads a request body, at most MAX_PAYLOAD bytes; past that, the rest is read and discarded. */
function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (err: Error | null) => {
      if (settled) return;
      settled = true;
      if (err) reject(err);
      else resolve(Buffer.concat(chunks));
    };
    req.on('data', (c: Buffer) => {
      if (settled) return; // discarding
      size += c.length;
      if (size > MAX_PAYLOAD) {
        chunks.length = 0;
        settle(new PayloadTooLarge());
      } else chunks.push(c);
    });
    req.on('end', () => settle(null));
    req.on('error', () => settle(new RequestAborted()));
    req.on('close', () => settle(new RequestAborted()));
  });
}

export class LocalGateway {
  private readonly routes: CompiledRoute[];
  private readonly opts: GatewayOptions;
  private readonly authCache = new Map<
    string,
    { result: APIGatewayAuthorizerResult | null; until: number }
  >();
  private server?: http.Server;

  constructor(opts: GatewayOptions) {
    this.opts = opts;
    this.routes = opts.topology.routes.map((r) => {
      const names: string[] = [];
      const pattern = r.path
        .split('/')
        .map((seg) => {
          const m = /^\{([A-Za-z0-9_]+)\+?\}$/.exec(seg);
          if (!m) return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
          names.push(m[1]!);
          return seg.endsWith('+}') ? '(.+)' : '([^/]+)';
        })
        .join('/');
      return { ...r, regex: new RegExp(`^${pattern}$`), names };
    });
  }

  /** Route templates, as `METHOD /path` (for the parity test). */
  routeKeys(): string[] {
    return this.routes.map((r) => `${r.method} ${r.path}`);
  }

  async start(port: number, host = '127.0.0.1'): Promise<string> {
    const server = http.createServer(
      { maxHeaderSize: MAX_HEADER_SIZE },
      (req, res) => void this.handle(req, res),
    );
    server.keepAliveTimeout = 5000;
    server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) =>
      this.clientError(err, socket),
    );
    // Expect: 100-continue with a body that is too large: refused before the client sends it.
    server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
      if (Number(req.headers['content-length']) > MAX_PAYLOAD) void this.handle(req, res);
      else {
        res.writeContinue();
        void this.handle(req, res);
      }
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'EADDRINUSE')
          reject(
            new Error(
              `port ${port} on ${host} is already in use: stop the other process or set PORT to another port`,
            ),
          );
        else reject(err);
      });
      server.listen(port, host, () => resolve());
    });
    const addr = server.address() as { port: number };
    return `http://${host}:${addr.port}`;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    const closed = new Promise<void>((r) => server.close(() => r()));
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), 2000).unref();
    await closed;
  }

  /** Node's HTTP parser refused the bytes on a connection: a JSON error, then a graceful close. */
  private readonly refusedSockets = new WeakSet<net.Socket>();
  private clientError(err: NodeJS.ErrnoException, socket: net.Socket): void {
    // The parser reports again for every further chunk it is given: answer once.
    if (this.refusedSockets.has(socket)) return;
    this.refusedSockets.add(socket);
    const inFlight = (socket as net.Socket & { _httpMessage?: http.ServerResponse })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    const r = clientErrorResponse(err.code);
    const requestId = randomUUID();
    const body = errorBody('invalid_request_error', r.code, r.message);
    socket.write(
      `HTTP/1.1 ${r.status} ${http.STATUS_CODES[r.status]}\r\n` +
        `content-type: application/json\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\n` +
        `x-amzn-requestid: ${requestId}\r\n` +
        `connection: close\r\n\r\n` +
        body,
    );
    closeGracefully(socket);
    // The request line may be unreadable (or hold anything): only what the parser said is logged.
    this.opts.logger.info(
      { status: r.status, code: r.code, parser: err.code, requestId },
      `HTTP ${r.status} ${r.code}`,
    );
  }

  private match(
    method: string,
    path: string,
  ): { route?: CompiledRoute; params: Record<string, string>; methodMismatch: boolean } {
    let methodMismatch = false;
    for (const r of this.routes) {
      const m = r.regex.exec(path);
      if (!m) continue;
      if (r.method !== method) {
        methodMismatch = true;
        continue;
      }
      const params: Record<string, string> = {};
      r.names.forEach((n, i) => {
        try {
          params[n] = decodeURIComponent(m[i + 1]!);
        } catch {
          params[n] = m[i + 1]!; // malformed percent-encoding: passed as is; the handler answers 404
        }
      });
      return { route: r, params, methodMismatch: false };
    }
    return { params: {}, methodMismatch };
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    const requestId = randomUUID();
    // The request target as a path (`//x/y` is a path, not a host), or absolute-form as sent.
    const target = req.url ?? '/';
    let url: URL;
    let badTarget = false;
    try {
      url = target.startsWith('/') ? new URL(`http://local${target}`) : new URL(target);
    } catch {
      url = new URL('http://local/');
      badTarget = true;
    }
    const method = (req.method ?? 'GET').toUpperCase();
    let status = 500;
    let merchantId: string | undefined;
    const reply = (code: number, body: string, headers: Record<string, string | string[]> = {}) => {
      status = code;
      res.writeHead(code, { 'content-type': 'application/json', 'x-amzn-requestid': requestId, ...headers });
      res.end(body);
    };
    /** Answers, then closes the connection without reading the rest of the request. */
    const replyAndClose = (code: number, body: string) => {
      // Node ends a `Connection: close` response with socket.destroySoon(): the socket is destroyed
      // once the response is flushed, resetting a client still sending. Close gracefully instead.
      const socket = req.socket as net.Socket & { destroySoon?: () => void };
      socket.destroySoon = () => closeGracefully(socket);
      reply(code, body, { connection: 'close' });
    };
    try {
      if (badTarget) {
        req.resume();
        replyAndClose(
          400,
          errorBody('invalid_request_error', 'malformed_request', 'Malformed HTTP request.'),
        );
        return;
      }
      if (Number(req.headers['content-length']) > MAX_PAYLOAD) {
        req.resume(); // discarded while the response goes out
        replyAndClose(413, tooLarge());
        return;
      }
      let body: Buffer;
      try {
        body = await readBody(req);
      } catch (err) {
        if (err instanceof PayloadTooLarge) replyAndClose(413, tooLarge());
        else status = 499; // the client went away: nobody to answer
        return;
      }
      if (body.length) {
        const charset = charsetOf(req.headers['content-type']);
        if (charset !== undefined && !UTF8.has(charset)) {
          reply(
            400,
            errorBody(
              'invalid_request_error',
              'unsupported_charset',
              'Request bodies must be UTF-8: send Content-Type: application/json (or with charset=utf-8).',
            ),
          );
          return;
        }
      }
      let text: string | null = null;
      if (body.length)
        try {
          text = utf8Decoder.decode(body);
        } catch {
          reply(400, errorBody('invalid_request_error', 'invalid_json', 'Request body is not valid UTF-8.'));
          return;
        }
      const { route, params, methodMismatch } = this.match(method, url.pathname);
      if (!route) {
        if (methodMismatch)
          reply(
            405,
            errorBody(
              'invalid_request_error',
              'method_not_allowed',
              `${method} is not allowed on ${shownPath(url.pathname)}.`,
            ),
          );
        else
          reply(
            404,
            errorBody(
              'invalid_request_error',
              'route_not_found',
              `No route for ${method} ${shownPath(url.pathname)}.`,
            ),
          );
        return;
      }
      // Null-prototype maps: a header or parameter named `constructor` or `__proto__` is a name
      // like any other (the event is cloned into plain objects before a handler sees it).
      const headers: Record<string, string> = Object.create(null) as Record<string, string>;
      const multiValueHeaders: Record<string, string[]> = Object.create(null) as Record<string, string[]>;
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        const k = req.rawHeaders[i]!;
        const v = req.rawHeaders[i + 1]!;
        headers[k] = headers[k] !== undefined ? `${headers[k]},${v}` : v;
        (multiValueHeaders[k] ??= []).push(v);
      }
      const query: Record<string, string> = Object.create(null) as Record<string, string>;
      const multiQuery: Record<string, string[]> = Object.create(null) as Record<string, string[]>;
      for (const [k, v] of url.searchParams) {
        query[k] = v;
        (multiQuery[k] ??= []).push(v);
      }
      const sourceIp = req.socket.remoteAddress ?? '127.0.0.1';
      const requestContext = {
        accountId: '000000000000',
        apiId: API_ID,
        stage: STAGE,
        requestId,
        resourceId: route.path,
        resourcePath: route.path,
        httpMethod: method,
        path: `/${STAGE}${url.pathname}`,
        protocol: 'HTTP/1.1',
        requestTimeEpoch: Date.now(),
        identity: { sourceIp, userAgent: req.headers['user-agent'] ?? null },
        authorizer: null as Record<string, unknown> | null,
      };

      if (route.auth !== 'none') {
        const auth = await this.authorize(
          method,
          route,
          url.pathname,
          headers,
          query,
          params,
          requestContext,
        );
        if (!auth) {
          reply(
            401,
            errorBody(
              'authentication_error',
              'invalid_api_key',
              'Invalid or missing API key. Send Authorization: Bearer <your API key>.',
            ),
          );
          return;
        }
        requestContext.authorizer = { principalId: auth.principalId, ...(auth.context ?? {}) };
        merchantId = auth.context?.merchantId as string | undefined;
      }

      const event = {
        resource: route.path,
        path: url.pathname,
        httpMethod: method,
        headers,
        multiValueHeaders,
        queryStringParameters: Object.keys(query).length ? query : null,
        multiValueQueryStringParameters: Object.keys(multiQuery).length ? multiQuery : null,
        pathParameters: Object.keys(params).length ? params : null,
        stageVariables: null,
        requestContext,
        body: text,
        isBase64Encoded: false,
      } as unknown as APIGatewayProxyEvent;

      let timer: NodeJS.Timeout | undefined;
      let result: APIGatewayProxyResult;
      try {
        result = (await Promise.race([
          this.opts.invoke(route.function, event),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(Object.assign(new Error('integration timeout'), { code: 'GATEWAY_TIMEOUT' })),
              INTEGRATION_TIMEOUT_MS,
            );
          }),
        ])) as APIGatewayProxyResult;
      } finally {
        clearTimeout(timer);
      }
      if (!result || typeof result.statusCode !== 'number') {
        this.opts.logger.error({ fn: route.function }, 'handler returned a malformed proxy result');
        reply(502, errorBody('api_error', 'bad_gateway', 'Internal server error.'));
        return;
      }
      const outHeaders: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(result.headers ?? {})) outHeaders[k.toLowerCase()] = String(v);
      for (const [k, v] of Object.entries(result.multiValueHeaders ?? {}))
        outHeaders[k.toLowerCase()] = v.map(String);
      const payload = result.isBase64Encoded
        ? Buffer.from(result.body ?? '', 'base64')
        : Buffer.from(result.body ?? '');
      status = result.statusCode;
      res.writeHead(result.statusCode, { 'x-amzn-requestid': requestId, ...outHeaders });
      res.end(payload);
    } catch (err) {
      const e = err as Error & { code?: string };
      if (e.code === 'GATEWAY_TIMEOUT')
        reply(504, errorBody('api_error', 'gateway_timeout', 'The request took too long.'));
      else {
        this.opts.logger.error({ err: e.message, name: e.name }, 'integration failed');
        reply(502, errorBody('api_error', 'bad_gateway', 'Internal server error.'));
      }
    } finally {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      this.opts.logger.info(
        {
          method,
          path: shownPath(url.pathname),
          status,
          ms: Math.round(ms * 10) / 10,
          merchant: merchantId,
          requestId,
        },
        `${method} ${shownPath(url.pathname)} ${status}`,
      );
    }
  }

  private async authorize(
    method: string,
    route: CompiledRoute,
    path: string,
    headers: Record<string, string>,
    query: Record<string, string>,
    params: Record<string, string>,
    requestContext: Record<string, unknown>,
  ): Promise<APIGatewayAuthorizerResult | null> {
    const authHeader = Object.entries(headers).find(([k]) => k.toLowerCase() === 'authorization')?.[1];
    // API Gateway rejects a request without the identity source before calling the authorizer.
    if (!authHeader) return null;
    const methodArn = `arn:aws:execute-api:local:000000000000:${API_ID}/${STAGE}/${method}${route.path}`;
    const ttl = this.opts.topology.authorizer.cacheTtlSeconds * 1000;
    const cached = this.authCache.get(authHeader);
    let result: APIGatewayAuthorizerResult | null;
    if (cached && cached.until > Date.now()) result = cached.result;
    else {
      try {
        result = (await this.opts.invoke(this.opts.topology.authorizer.function, {
          type: 'REQUEST',
          methodArn,
          resource: route.path,
          path,
          httpMethod: method,
          headers,
          queryStringParameters: query,
          pathParameters: params,
          stageVariables: {},
          requestContext,
        })) as APIGatewayAuthorizerResult;
      } catch (err) {
        if ((err as Error).message !== 'Unauthorized')
          this.opts.logger.error({ err: (err as Error).message }, 'authorizer failed');
        result = null;
      }
      if (ttl > 0) {
        if (this.authCache.size > 10_000) this.authCache.clear();
        this.authCache.set(authHeader, { result, until: Date.now() + ttl });
      }
    }
    if (!result || !allows(result, methodArn)) return null;
    return result;
  }
}

/** Evaluates an authorizer policy for one method ARN (explicit Deny wins; `*` and `?` wildcards). */
export function allows(result: APIGatewayAuthorizerResult, methodArn: string): boolean {
  const statements = result.policyDocument?.Statement ?? [];
  const matches = (resource: unknown) =>
    [resource].flat().some((r) =>
      new RegExp(
        `^${String(r)
          .replace(/[.+^${}()|[\]\\]/g, '\\$&')
          .replace(/\*/g, '.*')
          .replace(/\?/g, '.')}$`,
      ).test(methodArn),
    );
  let allowed = false;
  for (const s of statements as { Effect: string; Resource?: unknown; Action?: unknown }[]) {
    if (!matches(s.Resource)) continue;
    if (s.Effect === 'Deny') return false;
    if (s.Effect === 'Allow') allowed = true;
  }
  return allowed;
}
