/**
 * `npm start` as a user runs it: a separate process that serves the API, refuses a taken port
 * with a clear message (no stack trace), and shuts down cleanly on SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PROJECT_ROOT } from '../../lib/local/runtime.ts';

/** Every runtime a test started: killed after each test, so a failing test leaves none running. */
const children = new Set<ChildProcess>();

function start(env: Record<string, string>) {
  const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'lib/local/main.ts')], {
    env: { ...process.env, PAYSTEP_LOG_LEVEL: 'info', JEST_WORKER_ID: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  children.add(child);
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      children.delete(child);
      resolve(code);
    }),
  );
  return { child, output: () => out, exited };
}

async function until(cond: () => boolean, ms = 30_000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('npm start (lib/local/main.ts)', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-main-'))));
  afterEach(() => {
    for (const c of children) c.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('serves the API, then stops cleanly on SIGTERM and releases the data dir', async () => {
    const port = await freePort();
    const p = start({ PORT: String(port), PAYSTEP_DATA_DIR: dir });
    await until(() => p.output().includes('paystep is running at'));
    const res = await fetch(`http://127.0.0.1:${port}/v1/ping/png_x`);
    expect(res.status).toBe(401);
    await until(() => /"msg":"GET \/v1\/ping\/png_x 401"/.test(p.output()));
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    expect(p.output()).toMatch(/"msg":"stopped"/);
    expect(fs.existsSync(path.join(dir, 'runtime.json'))).toBe(false);
  }, 60_000);

  test('a taken port is a one-line error and exit code 1', async () => {
    const blocker = net.createServer().listen(0, '127.0.0.1');
    await new Promise((r) => blocker.once('listening', r));
    const port = (blocker.address() as net.AddressInfo).port;
    const p = start({ PORT: String(port), PAYSTEP_DATA_DIR: dir });
    expect(await p.exited).toBe(1);
    blocker.close();
    expect(p.output()).toContain(`paystep: port ${port} on 127.0.0.1 is already in use`);
    expect(p.output()).not.toMatch(/\n\s+at /); // no stack trace
  });

  test('a bad PAYSTEP_TIME_SCALE is refused before anything starts', async () => {
    const p = start({ PAYSTEP_TIME_SCALE: 'fast', PAYSTEP_DATA_DIR: dir });
    expect(await p.exited).toBe(2);
    expect(p.output()).toContain('PAYSTEP_TIME_SCALE must be a non-negative number');
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}
