/**
 * A log reader that stalls, restarts or dies never stops the platform (issue #12): `npm start` as
 * a separate process with piped stdio, logging at `debug`. While nobody reads its output it keeps
 * answering HTTP, drops what it cannot write (and says how much once the reader is back), survives
 * a reader that is gone (EPIPE), and still stops cleanly on SIGTERM, within the grace period; a
 * second signal, or the end of the grace period, ends it at once.
 *
 * The defect this guards against: with a full pipe and the reader gone, pino's exit-time flush
 * retried the write every 100 ms forever (Atomics.wait), and the process hung until SIGKILL.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { PROJECT_ROOT } from '../../lib/local/runtime.ts';

interface Started {
  child: ChildProcessByStdio<null, Readable, Readable>;
  url: string;
  output: () => string;
  /** Resolves once the output matches (checked on every chunk read). */
  waitFor: (re: RegExp) => Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children: Started['child'][] = [];
const dirs: string[] = [];

async function start(env: Record<string, string> = {}): Promise<Started> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-logreader-'));
  dirs.push(dir);
  const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'lib/local/main.ts')], {
    env: {
      ...process.env,
      PORT: '0',
      PAYSTEP_DATA_DIR: dir,
      PAYSTEP_LOG_LEVEL: 'debug',
      PAYSTEP_SCHEDULER: 'off',
      JEST_WORKER_ID: '',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  const onData = (d: Buffer) => {
    out += d.toString();
    for (const w of [...waiters])
      if (w.re.test(out)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const waitFor = (re: RegExp) =>
    re.test(out) ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ re, resolve }));
  await Promise.race([
    waitFor(/paystep is running at http:\/\/[\d.:]+/),
    exited.then(() => Promise.reject(new Error(`runtime exited:\n${out}`))),
  ]);
  const url = /paystep is running at (http:\/\/[\d.:]+)/.exec(out)![1]!;
  return { child, url, output: () => out, waitFor, exited };
}

/**
 * Requests that make the runtime log a lot: 404s on long paths (the gateway logs the path twice,
 * ~24 KB a line) and rejected API keys (the authorizer, a handler, logs through Powertools).
 * Every one must be answered.
 */
async function flood(url: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res =
      i % 5 === 4
        ? await fetch(`${url}/v1/ping/png_x`, {
            headers: { authorization: `Bearer sk_test_${randomBytes(12).toString('hex')}` },
          })
        : await fetch(`${url}/v1/${'x'.repeat(12_000)}/${i}`);
    expect([401, 404]).toContain(res.status);
    expect(((await res.json()) as { error: { type: string } }).error.type).toBeDefined();
  }
}

/** Opens a request and never finishes its body: the gateway cannot stop until it gives up on it. */
async function holdOpenRequest(url: string): Promise<net.Socket> {
  const { hostname, port } = new URL(url);
  const socket = net.connect(Number(port), hostname);
  await new Promise((r) => socket.once('connect', r));
  socket.on('error', () => undefined);
  socket.write(
    `POST /v1/payments HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{`,
  );
  return socket;
}

describe('the runtime and its log reader (lib/local/log.ts, lib/local/main.ts)', () => {
  // One runtime per test (each test ends it), started together: startup is most of the time.
  let runtimes: Record<'reader' | 'secondSignal' | 'grace', Started>;
  beforeAll(async () => {
    const [reader, secondSignal, grace] = await Promise.all([
      start(),
      start(),
      start({ PAYSTEP_SHUTDOWN_GRACE_MS: '300' }),
    ]);
    runtimes = { reader: reader!, secondSignal: secondSignal!, grace: grace! };
  });
  afterAll(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  test('a stalled reader costs log lines, not requests; a dead one does not stop SIGTERM', async () => {
    const rt = runtimes.reader;

    // The reader stops reading: the pipe fills up, then the runtime's bounded buffer.
    rt.child.stdout.pause();
    rt.child.stderr.pause();
    await flood(rt.url, 200);

    // It comes back: the runtime says how many lines it could not write.
    rt.child.stdout.resume();
    rt.child.stderr.resume();
    await rt.waitFor(/"dropped":\d+,"msg":"\d+ log lines dropped: the log reader was not keeping up"/);
    const dropped = /"dropped":(\d+)/.exec(rt.output())![1]!;
    expect(Number(dropped)).toBeGreaterThan(0);

    // Stalls again, with the pipe full, then goes away for good (a log shipper restarting).
    rt.child.stdout.pause();
    rt.child.stderr.pause();
    await flood(rt.url, 80);
    rt.child.stdout.destroy();
    rt.child.stderr.destroy();
    // Writes now fail with EPIPE, including the handlers' Powertools logs: still serving.
    await flood(rt.url, 10);

    rt.child.kill('SIGTERM');
    expect(await rt.exited).toEqual({ code: 0, signal: null }); // a clean stop, not the forced exit
  });

  test('a second SIGTERM while stopping exits at once', async () => {
    const rt = runtimes.secondSignal;
    const held = await holdOpenRequest(rt.url); // the gateway waits 2 s for it before closing it
    rt.child.kill('SIGTERM');
    await rt.waitFor(/"msg":"stopping"/);
    rt.child.kill('SIGTERM');
    expect(await rt.exited).toEqual({ code: 143, signal: null });
    expect(rt.output()).not.toMatch(/"msg":"stopped"/);
    held.destroy();
  });

  test('the grace period ends the stop unconditionally, without logging', async () => {
    const rt = runtimes.grace;
    const held = await holdOpenRequest(rt.url);
    rt.child.kill('SIGTERM');
    expect(await rt.exited).toEqual({ code: 1, signal: null });
    const afterStopping = rt.output().split('"msg":"stopping"')[1]!;
    expect(afterStopping).not.toMatch(/"msg":"stopped"/);
    expect(afterStopping).not.toMatch(/"level":(50|60)/); // the forced exit logs nothing
    held.destroy();
  });
});
