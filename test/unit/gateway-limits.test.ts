/**
 * The local gateway's own refusals (lib/local/gateway.ts): every one is a JSON error in the API's
 * shape, says `Connection: close` when the gateway closes the connection, and the client then
 * reads the whole response followed by a clean close (no reset). One gateway for the file, with an
 * echo function behind it; raw sockets where the bytes on the wire matter.
 */
import http from 'node:http';
import net from 'node:net';
import { LocalGateway } from '../../lib/local/gateway.ts';
import { createLogger } from '../../lib/local/log.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are checked by assertions
type Json = Record<string, any>;

const MB = 1024 * 1024;

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The connection ended with a FIN (not a reset, not still open). */
  closedCleanly: boolean;
  error?: string;
}

let gateway: LocalGateway;
let port: number;
const invoked: Json[] = [];

beforeAll(async () => {
  gateway = new LocalGateway({
    topology: {
      routes: [
        { method: 'POST', path: '/v1/echo', function: 'echo', auth: 'none' },
        { method: 'GET', path: '/v1/echo', function: 'echo', auth: 'none' },
      ],
      authorizer: { function: 'authorizer', cacheTtlSeconds: 0 },
    },
    invoke: async (_fn, event) => {
      const e = event as Json;
      invoked.push(e);
      return {
        statusCode: 200,
        body: JSON.stringify({ body: e.body, query: e.queryStringParameters, headers: e.headers }),
      };
    },
    logger: createLogger('gateway-test'),
  });
  const url = await gateway.start(0);
  port = Number(new URL(url).port);
});
afterAll(() => gateway.stop());

/**
 * Sends `head` (and `bodyBytes` bytes of body after it, as fast as the server takes them), then
 * reads until the server closes. The client only ends its side once the response is complete.
 */
function raw(head: string, bodyBytes = 0, chunked = false): Promise<RawResponse> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let error: string | undefined;
    let ended = false;
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', (e: NodeJS.ErrnoException) => (error ??= e.code ?? e.message));
    socket.on('end', () => {
      ended = true;
      socket.end();
    });
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      const [statusLine = '', ...headerLines] = text.slice(0, split < 0 ? text.length : split).split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of headerLines) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      let body = split < 0 ? '' : text.slice(split + 4);
      if (headers['transfer-encoding'] === 'chunked') body = dechunk(body);
      resolve({
        status: Number(statusLine.split(' ')[1]),
        headers,
        body,
        closedCleanly: ended && error === undefined,
        ...(error ? { error } : {}),
      });
    });
    socket.on('connect', async () => {
      socket.write(head);
      const piece = Buffer.alloc(64 * 1024, 'x');
      for (let sent = 0; sent < bodyBytes && socket.writable; sent += piece.length) {
        const data = chunked
          ? Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')])
          : piece;
        if (!socket.write(data)) await new Promise((r) => socket.once('drain', r).once('close', r));
      }
    });
  });
}

function dechunk(s: string): string {
  let out = '';
  for (;;) {
    const nl = s.indexOf('\r\n');
    const size = parseInt(s.slice(0, nl), 16);
    if (!size) return out;
    out += s.slice(nl + 2, nl + 2 + size);
    s = s.slice(nl + 2 + size + 2);
  }
}

function expectApiError(r: { body: string }, code: string): void {
  const e = (JSON.parse(r.body) as Json).error as Json;
  expect(e).toEqual({ type: 'invalid_request_error', code, message: expect.any(String) });
}

describe('gateway limits', () => {
  test('an 80 KB query string: 431 in JSON, Connection: close, then a clean close', async () => {
    const r = await raw(`GET /v1/echo?q=${'a'.repeat(80_000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    expect(r.status).toBe(431);
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.headers.connection).toBe('close');
    expectApiError(r, 'headers_too_large');
    expect(r.closedCleanly).toBe(true);

    const res = await fetch(`http://127.0.0.1:${port}/v1/echo?q=${'a'.repeat(80_000)}`);
    expect(res.status).toBe(431);
    expectApiError({ body: await res.text() }, 'headers_too_large');
  });

  test('oversized headers: 431 in JSON', async () => {
    const r = await raw(`GET /v1/echo HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`);
    expect(r.status).toBe(431);
    expectApiError(r, 'headers_too_large');
    expect(r.closedCleanly).toBe(true);
  });

  test('malformed HTTP: 400 in JSON, Connection: close', async () => {
    const r = await raw(`GET /v1/echo HTTP/1.1\r\nHost x\r\n\r\n`);
    expect(r.status).toBe(400);
    expect(r.headers.connection).toBe('close');
    expectApiError(r, 'malformed_request');
    expect(r.closedCleanly).toBe(true);
  });

  test('a body declared above 10 MB: 413 in JSON, Connection: close, the client reads it all', async () => {
    const size = 11 * MB;
    const r = await raw(
      `POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${size}\r\n\r\n`,
      size,
    );
    expect(r.status).toBe(413);
    expect(r.headers.connection).toBe('close');
    expect(r.headers['keep-alive']).toBeUndefined();
    expectApiError(r, 'body_too_large');
    expect(r.closedCleanly).toBe(true);
  });

  test('a chunked body that grows past 10 MB: 413, then a clean close', async () => {
    const r = await raw(
      `POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`,
      11 * MB,
      true,
    );
    expect(r.status).toBe(413);
    expect(r.headers.connection).toBe('close');
    expectApiError(r, 'body_too_large');
    expect(r.closedCleanly).toBe(true);
  });

  test('fetch gets the 413 in full too', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/v1/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: Buffer.alloc(11 * MB, 'x'),
    });
    expect(res.status).toBe(413);
    expect(res.headers.get('connection')).toBe('close');
    expectApiError({ body: await res.text() }, 'body_too_large');
  });

  test('Expect: 100-continue with a body above 10 MB is refused before the body is sent', async () => {
    const r = await raw(
      `POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: ${11 * MB}\r\nExpect: 100-continue\r\n\r\n`,
    );
    expect(r.status).toBe(413); // not 100 Continue first
    expectApiError(r, 'body_too_large');
  });

  test('a body in another charset than UTF-8: 400 unsupported_charset; UTF-8 in any spelling passes', async () => {
    const post = (contentType: string, body: string | Buffer) =>
      fetch(`http://127.0.0.1:${port}/v1/echo`, {
        method: 'POST',
        headers: { 'content-type': contentType },
        body,
      });
    for (const ct of [
      'application/json; charset=latin1',
      'application/json; charset="ISO-8859-1"',
      'application/json;charset=utf-16',
    ]) {
      const res = await post(ct, Buffer.from('{"name":"caf\xe9"}', 'latin1'));
      expect(res.status).toBe(400);
      expectApiError({ body: await res.text() }, 'unsupported_charset');
    }
    for (const ct of [
      'application/json',
      'application/json; charset=utf-8',
      'application/json; charset="UTF-8"',
    ]) {
      const res = await post(ct, '{"name":"café"}');
      expect(res.status).toBe(200);
      expect(((await res.json()) as Json).body).toBe('{"name":"café"}');
    }
    // No body, nothing to decode: the charset does not matter.
    const get = await fetch(`http://127.0.0.1:${port}/v1/echo`, {
      headers: { 'content-type': 'application/json; charset=latin1' },
    });
    expect(get.status).toBe(200);
  });

  test('a body that is not valid UTF-8 is refused, not passed on altered', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/v1/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]), // {"a":"\xff\xfe"}
    });
    expect(res.status).toBe(400);
    expectApiError({ body: await res.text() }, 'invalid_json');
  });

  test('an unknown route whose path holds a card number: 404 without echoing it', async () => {
    for (const path of ['/v1/cards/4242424242424242', '/v1/cards/4242%204242%204242%204242']) {
      const res = await fetch(`http://127.0.0.1:${port}${path}`);
      const text = await res.text();
      expect(res.status).toBe(404);
      expect(text).not.toMatch(/4242/);
      expect(JSON.parse(text)).toMatchObject({ error: { code: 'route_not_found' } });
    }
    const res = await fetch(`http://127.0.0.1:${port}/v1/nothing/here`);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain(
      '/v1/nothing/here',
    );
  });

  test('a normal request keeps the connection alive', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const get = () =>
      new Promise<{ status: number; socket: net.Socket; connection?: string }>((resolve, reject) => {
        const req = http.get({ port, host: '127.0.0.1', path: '/v1/echo', agent }, (res) => {
          res.resume();
          res.on('end', () =>
            resolve({ status: res.statusCode!, socket: req.socket!, connection: res.headers.connection }),
          );
        });
        req.on('error', reject);
      });
    const a = await get();
    const b = await get();
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(a.connection).toBe('keep-alive');
    expect(b.socket).toBe(a.socket);
    agent.destroy();
  });

  test('headers and query parameters named like Object.prototype members are ordinary names', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/v1/echo?constructor=1&__proto__=2&toString=3`, {
      headers: { constructor: 'c', 'x-proto': 'p' },
    });
    expect(res.status).toBe(200);
    const echoed = (await res.json()) as Json;
    expect(echoed.query).toEqual(JSON.parse('{"constructor":"1","__proto__":"2","toString":"3"}'));
    expect(echoed.headers.constructor).toBe('c');
  });
});
