/**
 * A restart neither loses nor duplicates work: an execution paused in a Wait when the runtime
 * stops resumes at the next start, without re-running the tasks it had finished.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readRuntimeInfo, startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';

describe('local runtime restart', () => {
  let dir: string;
  let rt: Runtime | undefined;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-restart-'));
  });
  afterEach(async () => {
    await rt?.stop();
    rt = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const get = async (url: string, key: string) =>
    (await fetch(url, { headers: { authorization: `Bearer ${key}` } })).json() as Promise<
      Record<string, unknown>
    >;

  test('an execution waiting when the runtime stops resumes after restart, finished tasks not repeated', async () => {
    rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 1, scheduler: false });
    const { apiKey } = await createMerchant('Acme');
    const res = await fetch(`${rt.url}/v1/ping`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}` },
    });
    const { id, execution_arn } = (await res.json()) as { id: string; execution_arn: string };
    // "Pause briefly" waits 1 s (unscaled): stop while the execution sits in it.
    for (let i = 0; i < 200; i++) {
      const p = await get(`${rt.url}/v1/ping/${id}`, apiKey);
      if (p.status === 'reported') break;
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(rt.stepFunctions.describeExecution({ executionArn: execution_arn }).status).toBe('RUNNING');
    const before = rt.lambdas.stats();
    expect(before['ping-record']).toBe(1);
    await rt.stop();
    expect(readRuntimeInfo(dir)).toBeUndefined(); // lock released

    rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 1, scheduler: false });
    const done = await rt.stepFunctions.waitForExecution(execution_arn, 10_000);
    expect(done.status).toBe('SUCCEEDED');
    const after = rt.lambdas.stats();
    expect(after['ping-record'] ?? 0).toBe(0); // replayed from the journal, not re-invoked
    expect(after['ping-complete']).toBe(1);
    expect((await get(`${rt.url}/v1/ping/${id}`, apiKey)).status).toBe('complete');
  });

  test('a second runtime on the same data dir is refused with a clear error', async () => {
    rt = await startRuntime({ dataDir: dir, port: 0, scheduler: false });
    fs.writeFileSync(
      path.join(dir, 'runtime.json'),
      JSON.stringify({ ...readRuntimeInfo(dir), pid: process.ppid }),
    );
    await expect(startRuntime({ dataDir: dir, port: 0, scheduler: false })).rejects.toThrow(
      /another paystep runtime/,
    );
  });

  test('a taken port and an unwritable data dir are reported clearly', async () => {
    rt = await startRuntime({ dataDir: dir, port: 0, scheduler: false });
    const port = Number(new URL(rt.url!).port);
    const dir2 = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-restart2-'));
    await expect(startRuntime({ dataDir: dir2, port, scheduler: false })).rejects.toThrow(/already in use/);
    fs.rmSync(dir2, { recursive: true, force: true });
    const file = path.join(dir, 'not-a-dir');
    fs.writeFileSync(file, 'x');
    await expect(startRuntime({ dataDir: path.join(file, 'data'), port: 0 })).rejects.toThrow(/not writable/);
  });
});
