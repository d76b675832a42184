/**
 * The checkout bench's load generator: a keep-alive HTTP client, and the closed loop of clients that
 * each POST /v1/payments (pm_card_visa, automatic capture, a new Idempotency-Key every time) and send
 * the next request as soon as the answer arrives, one Sample per answer.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Target } from './target.ts';

export interface Sample {
  /** Wall-clock start and end, epoch ms with fractions. */
  start: number;
  end: number;
  status: number;
  paymentStatus?: string;
  id?: string;
  error?: string;
}

export function postJson(
  agent: http.Agent,
  base: URL,
  reqPath: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: base.hostname,
        port: base.port,
        method: body === undefined ? 'GET' : 'POST',
        path: reqPath,
        agent,
        headers: body === undefined ? headers : { ...headers, 'content-length': Buffer.byteLength(body) },
        timeout: 60_000,
      },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (data += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('client timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end(body);
  });
}

export const now = () => performance.timeOrigin + performance.now();

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `concurrency` clients until `until` (epoch ms); every answer goes to `sink`. */
export async function closedLoop(
  target: Target,
  agent: http.Agent,
  concurrency: number,
  until: number,
  sink: (s: Sample) => void,
): Promise<void> {
  const base = new URL(target.url);
  const body = JSON.stringify({ amount: 1050, currency: 'usd', payment_method: 'pm_card_visa' });
  const worker = async () => {
    while (now() < until) {
      const start = now();
      try {
        const res = await postJson(
          agent,
          base,
          '/v1/payments',
          {
            authorization: `Bearer ${target.key}`,
            'content-type': 'application/json',
            'idempotency-key': randomUUID(),
          },
          body,
        );
        const s: Sample = { start, end: now(), status: res.status };
        try {
          const j = JSON.parse(res.body) as { id?: string; status?: string; error?: { code?: string } };
          if (res.status === 201) {
            s.paymentStatus = j.status;
            s.id = j.id;
          } else s.error = `${res.status} ${j.error?.code ?? ''}`.trim();
        } catch {
          s.error = `${res.status} unparsable body`;
        }
        sink(s);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        sink({ start, end: now(), status: 0, error: e.code ?? e.message });
        await sleep(10);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}
