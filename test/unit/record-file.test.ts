/**
 * framework/record-file.ts, the simulators' records on disk with an index in memory: the order keys
 * were first stored in survives forgetting, compaction and both ways of loading (index snapshot,
 * whole file); in memory (no file) forgotten keys do not pile up.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RecordFile } from '../../lib/local/processors/framework/record-file.ts';

interface Rec {
  k: string;
  n: number;
  gone?: true;
}

const make = (file?: string) =>
  new RecordFile<Rec>({
    file,
    key: (r) => r.k,
    deleted: (r) => r.gone === true,
    classify: (r) => ({ tag: r.n % 2, aux: r.n }),
    cacheSize: 8,
  });

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-record-file-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

test('keys keep their first-stored order through updates, deletes, compaction and reloads', () => {
  const file = path.join(dir, 'r.jsonl');
  const f = make(file);
  f.load(
    () => undefined,
    () => undefined,
  );
  for (let i = 0; i < 50; i++) f.append({ k: `k${i}`, n: i });
  for (let i = 0; i < 50; i += 5) f.append({ k: `k${i}`, n: i + 100 }); // updated: same place
  for (let i = 1; i < 50; i += 7) f.append({ k: `k${i}`, n: 0, gone: true }); // deleted
  f.forget('k2');
  const expected = [...f.keysWhere(() => true)];
  expect(expected).toHaveLength(50 - 7 - 1);
  expect(expected.slice(0, 3)).toEqual(['k0', 'k3', 'k4']);
  expect(f.read('k10')).toEqual({ k: 'k10', n: 110 });
  expect([...f.keysWhere((tag) => tag === 0)]).toEqual(expected.filter((k) => f.read(k)!.n % 2 === 0));
  f.compact({ note: 'meta' });
  expect([...f.keysWhere(() => true)]).toEqual(expected);
  expect(f.lines).toBe(expected.length + 1); // the generation line and one a live key
  f.append({ k: 'k2', n: 2 }); // stored again: now last
  f.close({ note: 'closed' });

  for (const snapshot of [true, false]) {
    if (!snapshot) fs.rmSync(`${file}.idx.json`);
    const g = make(file);
    let meta: unknown;
    const parsed: string[] = [];
    g.load(
      (r) => parsed.push(r.k),
      (m) => (meta = m),
    );
    expect([...g.keysWhere(() => true)]).toEqual([...expected, 'k2']);
    expect(g.read('k10')).toEqual({ k: 'k10', n: 110 });
    expect(g.aux('k45')).toBe(145);
    if (snapshot) {
      expect(meta).toEqual({ note: 'closed' });
      expect(parsed).toEqual([]); // nothing after the snapshot
    } else expect(parsed).toHaveLength(expected.length + 1);
    g.close();
  }
});

test('in memory, forgotten keys are renumbered away', () => {
  const f = make();
  for (let i = 0; i < 3000; i++) f.append({ k: `k${i}`, n: i });
  for (let i = 0; i < 2500; i++) f.forget(`k${i}`);
  expect(f.count).toBe(500);
  const keys = [...f.keysWhere(() => true)];
  expect(keys[0]).toBe('k2500');
  expect(keys.at(-1)).toBe('k2999');
  expect(f.read('k2999')).toEqual({ k: 'k2999', n: 2999 });
  expect(f.read('k10')).toBeUndefined();
  f.append({ k: 'k10', n: 10 });
  expect([...f.keysWhere(() => true)].at(-1)).toBe('k10');
});
