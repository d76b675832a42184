/**
 * Local API Gateway: HTTP requests → REST API (v1) proxy events for the same handlers, behind the
 * same request authorizer; proxy results → HTTP responses. One log line per request.
 *
 * What it reproduces from API Gateway: route matching on path templates, the REQUEST authorizer
 * with its policy and context (cached per Authorization header for the topology's TTL), 401 for
 * a missing or rejected key, 10 MB payload limit, 29 s integration timeout, and gateway errors in
 * the API's own error shape (the CDK stack configures the same gateway responses).
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { APIGatewayAuthorizerResult, APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import type { RouteDef, Topology } from '../topology.ts';
import type { Logger } from './log.ts';

const MAX_PAYLOAD = 10 * 1024 * 1024;
const INTEGRATION_TIMEOUT_MS = 29_000;
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
    const server = http.createServer((req, res) => void this.handle(req, res));
    server.keepAliveTimeout = 5000;
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
    const url = new URL(req.url ?? '/', 'http://local');
    const method = (req.method ?? 'GET').toUpperCase();
    let status = 500;
    let merchantId: string | undefined;
    const reply = (code: number, body: string, headers: Record<string, string | string[]> = {}) => {
      status = code;
      res.writeHead(code, { 'content-type': 'application/json', 'x-amzn-requestid': requestId, ...headers });
      res.end(body);
    };
    try {
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const c of req) {
        size += (c as Buffer).length;
        if (size > MAX_PAYLOAD) {
          reply(413, errorBody('invalid_request_error', 'payload_too_large', 'Request body exceeds 10 MB.'));
          return;
        }
        chunks.push(c as Buffer);
      }
      const { route, params, methodMismatch } = this.match(method, url.pathname);
      if (!route) {
        if (methodMismatch)
          reply(
            405,
            errorBody(
              'invalid_request_error',
              'method_not_allowed',
              `${method} is not allowed on ${url.pathname}.`,
            ),
          );
        else
          reply(
            404,
            errorBody('invalid_request_error', 'route_not_found', `No route for ${method} ${url.pathname}.`),
          );
        return;
      }
      const headers: Record<string, string> = {};
      const multiValueHeaders: Record<string, string[]> = {};
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        const k = req.rawHeaders[i]!;
        const v = req.rawHeaders[i + 1]!;
        headers[k] = headers[k] !== undefined ? `${headers[k]},${v}` : v;
        (multiValueHeaders[k] ??= []).push(v);
      }
      const query: Record<string, string> = {};
      const multiQuery: Record<string, string[]> = {};
      for (const [k, v] of url.searchParams) {
        query[k] = v;
        (multiQuery[k] ??= []).push(v);
      }
      const body = Buffer.concat(chunks);
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

      if (route.auth === 'merchant') {
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
        body: body.length ? body.toString('utf8') : null,
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
        { method, path: url.pathname, status, ms: Math.round(ms * 10) / 10, merchant: merchantId, requestId },
        `${method} ${url.pathname} ${status}`,
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
