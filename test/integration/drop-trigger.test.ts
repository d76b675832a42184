/**
 * A settlement file dropped by finance into the settlements bucket's `incoming/<processor>/`
 * prefix starts its reconciliation at once (object-created trigger, as S3 → EventBridge in AWS),
 * under the same execution name the hourly sync would use, so the file is reconciled once.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { startRuntime, PROJECT_ROOT, type Runtime } from '../../lib/local/runtime.ts';
import { handler as sync } from '../../lambdas/reconciliation/sync.ts';

describe('settlements drop prefix', () => {
  let dir: string;
  let rt: Runtime;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-drop-'));
    rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 1000, scheduler: false });
  });
  afterAll(async () => {
    await rt?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a dropped file starts its reconciliation immediately, once', async () => {
    const s3 = new S3Client({
      endpoint: rt.endpoints.s3,
      region: 'local',
      credentials: { accessKeyId: 'l', secretAccessKey: 'l' },
    });
    const body = fs.readFileSync(path.join(PROJECT_ROOT, 'test/fixtures/finance/stripe-itemized-po_A.csv'));
    await s3.send(
      new PutObjectCommand({
        Bucket: 'paystep-settlements',
        Key: 'incoming/stripe/po_A.csv',
        Body: body,
        ContentType: 'text/csv',
      }),
    );
    const smArn = rt.stepFunctions.stateMachineArn('reconciliation');
    let executions: { name: string; executionArn: string }[] = [];
    for (let i = 0; i < 200 && executions.length === 0; i++) {
      executions = rt.stepFunctions.listExecutions({ stateMachineArn: smArn }).executions;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(executions).toHaveLength(1);
    expect(executions[0]!.name).toMatch(/^stripe-drop-[0-9a-f]{20}$/);
    await rt.stepFunctions.waitForExecution(executions[0]!.executionArn, 30_000);
    // The hourly sync, run afterwards, finds nothing new to start for that file.
    const again = await sync({ processor: 'stripe', only: 'files' });
    expect(again.started).toEqual([]);
    expect(rt.stepFunctions.listExecutions({ stateMachineArn: smArn }).executions).toHaveLength(1);
    s3.destroy();
  });

  test('files outside incoming/<processor>/ are ignored', async () => {
    const out = await sync({
      'detail-type': 'Object Created',
      detail: { bucket: { name: 'paystep-settlements' }, object: { key: 'incoming/unknown/x.csv' } },
    } as never);
    expect(out.started).toEqual([]);
  });
});
