import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CheckpointFile } from '../../lib/local/stream-checkpoints.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'paystep-cp-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('checkpoints are written in the background at most once per interval, one write at a time, and exactly at close', async () => {
  const file = path.join(dir, 'main.checkpoints.json');
  let value = 0;
  let reads = 0;
  const errors: unknown[] = [];
  const cp = new CheckpointFile(
    file,
    () => {
      reads++;
      return JSON.stringify({ value }) + '\n';
    },
    (err) => errors.push(err),
    20,
  );
  cp.writeNow();
  expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ value: 0 });
  // Many moves within one interval: one background write, of the state when it starts.
  for (value = 1; value <= 100; value++) cp.schedule();
  value = 100;
  const readsBefore = reads;
  await new Promise<void>((resolve) => {
    const check = () =>
      JSON.parse(readFileSync(file, 'utf8')).value === 100 ? resolve() : setTimeout(check, 5);
    check();
  });
  expect(reads - readsBefore).toBe(1);
  // A move right before close is on disk when close returns, and no temporary file is left.
  value = 101;
  cp.schedule();
  await cp.close();
  expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ value: 101 });
  cp.schedule(); // closed: nothing more is written
  value = 102;
  await new Promise((r) => setTimeout(r, 50));
  expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ value: 101 });
  expect(readdirSync(dir)).toEqual(['main.checkpoints.json']);
  expect(errors).toEqual([]);
});
