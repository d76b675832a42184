/**
 * Report and settlement spill files (lambdas/reports/storage.ts TempFile) leave nothing behind,
 * also when removed before their stream has opened the file (a parse that fails at once).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { TempFile } from '../../lambdas/reports/storage.ts';

const prefix = `paystep-tempfile-test-${process.pid}`;
const leftovers = () => fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith(prefix));

test('a file removed at once, before its stream opened it, is not left behind', async () => {
  const f = new TempFile(prefix);
  const out = (f as unknown as { out: fs.WriteStream }).out;
  f.remove();
  // The removal closes the stream (after it opened the file, if it was opening it); without that
  // the file stays: give up waiting for the close after a second and look.
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    once(out, 'close'),
    new Promise((r) => {
      timer = setTimeout(r, 1000);
    }),
  ]);
  clearTimeout(timer);
  expect(fs.existsSync(f.path)).toBe(false);
  expect(leftovers()).toEqual([]);
});

test('a written and closed file is removed', async () => {
  const f = new TempFile(prefix);
  await f.write('a line\n');
  const { bytes } = await f.close();
  expect(bytes).toBe(7);
  expect(fs.readFileSync(f.path, 'utf8')).toBe('a line\n');
  f.remove();
  expect(fs.existsSync(path.join(f.path))).toBe(false);
});
