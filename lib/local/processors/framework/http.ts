/**
 * A small HTTP server for processor simulators: listens on 127.0.0.1, reads each request body
 * (bounded), hands `{method, path, headers, body}` to one async handler and writes its reply.
 * Nothing here knows a processor: the simulator decides auth, faults, routing and bodies.
 *
 * Besides ordinary replies, a handler may return `{ hang: true }` (the request is never answered:
 * the client times out; the connection is dropped at `stop()`) or `{ destroy: true }` (the
 * connection is reset without an answer, as an unreachable or crashing server looks to a client).
 */
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../log.ts';
import { listenOn } from '../../ports.ts';

export interface HttpRequest {
  method: string;
  url: URL;
  path: string;
  headers: IncomingHttpHeaders;
  /** The raw body (UTF-8). */
  body: string;
}

export type HttpReply =
  | {
      status: number;
      /** Serialized as JSON (content type application/json). */
      json?: unknown;
      /** Sent as is (content type from `contentType`, default text/plain). */
      text?: string;
      contentType?: string;
      headers?: Record<string, string>;
    }
  | { hang: true }
  | { destroy: true };

/** A reply that answers (not `hang` or `destroy`). */
export type HttpAnswer = Extract<HttpReply, { status: number }>;

export interface Route {
  method: string;
  pattern: RegExp;
  handler: (req: HttpRequest, params: string[]) => HttpReply | Promise<HttpReply>;
}

export type RouteMatch<R> =
  { kind: 'found'; route: R; params: string[] } | { kind: 'method-not-allowed' } | { kind: 'not-found' };

/** Finds the route for `method path`; captured groups are URI-decoded. */
export function matchRoute<R extends { method: string; pattern: RegExp }>(
  routes: readonly R[],
  method: string,
  path: string,
): RouteMatch<R> {
  let pathMatched = false;
  for (const route of routes) {
    const m = route.pattern.exec(path);
    if (!m) continue;
    pathMatched = true;
    if (route.method !== method) continue;
    const params = m.slice(1).map((p) => {
      try {
        return decodeURIComponent(p ?? '');
      } catch {
        return p ?? '';
      }
    });
    return { kind: 'found', route, params };
  }
  return pathMatched ? { kind: 'method-not-allowed' } : { kind: 'not-found' };
}

export interface SimHttpServerOptions {
  /** For log lines. */
  name: string;
  logger: Logger;
  handle: (req: HttpRequest) => Promise<HttpReply>;
  /** Requests with a larger body are answered 413 without reaching `handle` (default 1 MiB). */
  maxBodyBytes?: number;
  /** Reply when `handle` throws (default: a plain 500). */
  onError?: (err: unknown) => HttpReply;
}

export class SimHttpServer {
  private server?: Server;
  private base = '';
  private door?: Server;
  private doorPort = 0;
  private doorBase = '';
  private doorChange: Promise<void> = Promise.resolve();
  private readonly opts: SimHttpServerOptions;

  constructor(opts: SimHttpServerOptions) {
    this.opts = opts;
  }

  get url(): string {
    return this.base;
  }

  get listening(): boolean {
    return this.server !== undefined;
  }

  /** The request listener both doors share. */
  private readonly listener = (req: IncomingMessage, res: ServerResponse): void => {
    const max = this.opts.maxBodyBytes ?? 1 << 20;
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) tooLarge = true;
      else chunks.push(c);
    });
    req.on('error', () => res.destroy());
    req.on('end', () => {
      if (tooLarge) {
        this.write(res, { status: 413, text: 'Request body too large' });
        return;
      }
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const request: HttpRequest = {
        method: req.method ?? 'GET',
        url,
        path: url.pathname,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      this.opts
        .handle(request)
        .catch((err: unknown) => {
          this.opts.logger.error({ err }, `${this.opts.name}: unhandled error`);
          return this.opts.onError?.(err) ?? { status: 500, text: 'Internal error' };
        })
        .then((reply) => this.write(res, reply));
    });
  };

  private async listen(port: number): Promise<Server> {
    const server = createServer(this.listener);
    server.keepAliveTimeout = 5000;
    await listenOn(server, port);
    return server;
  }

  async start(port = 0): Promise<string> {
    if (this.server) return this.base;
    const server = await this.listen(port);
    this.server = server;
    this.base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return this.base;
  }

  /**
   * The API door: a second address with the same routes, the one paystep's connectors are pointed
   * at. Unlike the main address (where tests and the CLI reach `/_sim/*`), the door can be closed
   * — `refuse(true)` — so that the processor refuses connections, as an unreachable processor
   * does, while its fault controls stay reachable. Returns the door's URL.
   */
  async openDoor(port = 0): Promise<string> {
    if (this.door) return this.doorBase;
    this.door = await this.listen(port);
    this.doorPort = (this.door.address() as AddressInfo).port;
    this.doorBase = `http://127.0.0.1:${this.doorPort}`;
    return this.doorBase;
  }

  /** The API door's URL ('' before `openDoor`). */
  get doorUrl(): string {
    return this.doorBase;
  }

  /** Resolves once the API door's last open or close has happened. */
  settled(): Promise<void> {
    return this.doorChange;
  }

  /** Whether the API door refuses connections now. */
  get refusing(): boolean {
    return this.doorPort !== 0 && !this.door;
  }

  /**
   * Closes the API door (connections are refused; open ones are dropped) or opens it again on the
   * same port. While it was closed another process may have taken the port for an outgoing
   * connection: reopening then retries for a few seconds.
   */
  async refuse(on: boolean): Promise<void> {
    this.doorChange = this.doorChange.then(async () => {
      if (!this.doorPort || !this.server) return;
      if (on && this.door) {
        const door = this.door;
        this.door = undefined;
        await closeServer(door);
      } else if (!on && !this.door) {
        for (let wait = 25; ; wait = Math.min(wait * 2, 500)) {
          try {
            this.door = await this.listen(this.doorPort);
            return;
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || wait >= 500) {
              this.opts.logger.error({ err }, `${this.opts.name}: could not reopen its API door`);
              return;
            }
            await new Promise((r) => setTimeout(r, wait));
          }
        }
      }
    });
    await this.doorChange;
  }

  /** Stops listening and drops every open connection, hung requests included. */
  async stop(): Promise<void> {
    await this.doorChange;
    const servers = [this.server, this.door].filter((s): s is Server => s !== undefined);
    this.server = undefined;
    this.door = undefined;
    this.doorPort = 0;
    this.doorBase = '';
    await Promise.all(servers.map(closeServer));
  }

  private write(res: ServerResponse, reply: HttpReply): void {
    if (res.writableEnded || res.destroyed) return;
    if ('hang' in reply) return;
    if ('destroy' in reply) {
      res.socket?.destroy();
      return;
    }
    let body = '';
    let type = reply.contentType;
    if (reply.json !== undefined) {
      body = JSON.stringify(reply.json);
      type ??= 'application/json;charset=UTF-8';
    } else if (reply.text !== undefined) {
      body = reply.text;
      type ??= 'text/plain;charset=UTF-8';
    }
    const headers: Record<string, string | number> = { ...(reply.headers ?? {}) };
    if (type) headers['Content-Type'] = type;
    headers['Content-Length'] = Buffer.byteLength(body);
    res.writeHead(reply.status, headers);
    res.end(body);
  }
}

/** Reads a header as a single string (first value of a repeated header). */
export function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** Closes a server and drops its open connections (hung requests included). */
function closeServer(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  return closed;
}
