/**
 * One webhook POST against a real local HTTP server: the signed request a merchant receives, and
 * how each kind of failure (HTTP error, redirect, timeout, refused connection) is reported instead
 * of thrown.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { postWebhook } from '../../lambdas/events/delivery.ts';
import { verifyPaystepSignature } from '../../lambdas/events/signature.ts';

describe('postWebhook', () => {
  let server: Server;
  let base: string;
  const requests: { url: string; headers: Record<string, unknown>; body: string }[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        requests.push({
          url: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        });
        if (req.url === '/slow') return; // never answers
        if (req.url === '/redirect') {
          res.writeHead(302, { location: '/ok' });
          return res.end();
        }
        res.writeHead(req.url === '/error' ? 503 : 204);
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const body = JSON.stringify({ id: 'evt_1', object: 'event', type: 'payment.captured' });

  test('POSTs the raw JSON body with a signature that verifies with the endpoint secret', async () => {
    const r = await postWebhook(`${base}/ok`, body, 'whsec_abc');
    expect(r).toEqual({ ok: true, httpStatus: 204, latencyMs: expect.any(Number), error: null });
    const req = requests.find((x) => x.url === '/ok')!;
    expect(req.body).toBe(body);
    expect(req.headers['content-type']).toBe('application/json');
    expect(verifyPaystepSignature(req.body, req.headers['paystep-signature'] as string, 'whsec_abc')).toBe(
      true,
    );
  });

  test('a non-2xx answer is a failed attempt with its status', async () => {
    expect(await postWebhook(`${base}/error`, body, 's')).toMatchObject({
      ok: false,
      httpStatus: 503,
      error: 'HTTP 503',
    });
  });

  test('a redirect is not followed and counts as a failure', async () => {
    const before = requests.filter((x) => x.url === '/ok').length;
    expect(await postWebhook(`${base}/redirect`, body, 's')).toMatchObject({ ok: false, httpStatus: 302 });
    expect(requests.filter((x) => x.url === '/ok').length).toBe(before);
  });

  test('a timeout and a refused connection are reported, not thrown', async () => {
    const slow = await postWebhook(`${base}/slow`, body, 's', 150);
    expect(slow).toMatchObject({ ok: false, httpStatus: null, error: 'timed out after 150 ms' });
    expect(slow.latencyMs).toBeGreaterThanOrEqual(140);
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const refused = await postWebhook(`http://127.0.0.1:${port}/`, body, 's');
    expect(refused).toMatchObject({ ok: false, httpStatus: null });
    expect(refused.error).toMatch(/^connection failed/);
  });
});
