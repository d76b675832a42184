/**
 * LogOutput (lib/local/log.ts), in front of a stream whose reader can stall or vanish: bounded,
 * never throws, never asks the writer to wait, counts what it drops and says so once the reader
 * has caught up. (test/integration/log-reader.test.ts does the same with a real pipe.)
 */
import { Writable } from 'node:stream';
import { LogOutput } from '../../lib/local/log.ts';

/** A stream whose reader takes nothing until `release()` is called. */
function stalledStream() {
  const written: string[] = [];
  let pending: (() => void)[] = [];
  let stalled = true;
  const stream = new Writable({
    highWaterMark: 16,
    write(chunk: Buffer, _enc, cb) {
      written.push(chunk.toString());
      if (stalled) pending.push(cb);
      else cb();
    },
  });
  const release = () => {
    stalled = false;
    const cbs = pending;
    pending = [];
    for (const cb of cbs) cb();
  };
  return { stream, written, release };
}

describe('LogOutput', () => {
  test('a stalled reader: at most maxPendingBytes wait, the rest is dropped, counted and reported', async () => {
    const { stream, written, release } = stalledStream();
    const out = new LogOutput(stream, { maxPendingBytes: 100 });
    const line = 'x'.repeat(29) + '\n'; // 30 bytes
    const results = Array.from({ length: 10 }, () => out.write(line));
    expect(results.every((r) => r === true)).toBe(true); // never "wait for drain"
    expect(out.stats()).toEqual({ written: 3, dropped: 7 });

    const drained = new Promise((r) => stream.once('drain', r));
    release();
    await drained;
    expect(written.at(-1)).toMatch(
      /"dropped":7,"msg":"7 log lines dropped: the log reader was not keeping up"/,
    );
    out.write(line);
    expect(written.at(-1)).toBe(line);
    expect(out.stats()).toEqual({ written: 4, dropped: 7 });
  });

  test('a write error (the reader is gone): nothing thrown, everything after it dropped', async () => {
    const stream = new Writable({
      write(_chunk, _enc, cb) {
        cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      },
    });
    const out = new LogOutput(stream);
    const errored = new Promise((r) => stream.once('error', r));
    out.write('first\n');
    await errored; // and no unhandled 'error': LogOutput listens
    expect(() => out.write('second\n')).not.toThrow();
    const callback = new Promise((r) => out.write('third\n', r));
    await callback; // a dropped line still calls back
    expect(out.stats()).toEqual({ written: 1, dropped: 2, failed: 'EPIPE' });
  });
});
