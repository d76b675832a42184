/**
 * A stream's checkpoint file (`<dataDir>/streams/<table>.checkpoints.json`), written off the event
 * loop.
 *
 * Checkpoints only bound redelivery after a crash: delivery is at least once, and a record
 * delivered but not yet checkpointed is delivered again after a restart, as the same record. So
 * a checkpoint need not be on disk the moment it moves. `schedule()` writes at most once per
 * `flushMs` (1 s), with `fs.promises` (write, fsync, rename, fsync of the directory on the libuv
 * thread pool, not on the event loop), and never two writes at once: a checkpoint that moves while a
 * write is in flight is written by the next one. `close()` (at stop, the SIGTERM path) waits for a
 * write in flight and then writes the latest checkpoints synchronously, so a clean stop leaves them
 * exact. Before this, a synchronous write (two fsyncs and a rename) ran on the event loop every
 * 25 ms of delivery: 4 % of the loop and multi-millisecond stalls (docs/performance.md).
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { writeFileAtomic } from './files.ts';

export const CHECKPOINT_FLUSH_MS = 1000;

/** `writeFileAtomic` with fs.promises: readers see the old content or the new, never a torn one. */
export async function writeFileAtomicAsync(path: string, data: string): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const file = await fsp.open(tmp, 'wx', 0o600);
  try {
    await file.writeFile(data, 'utf8');
    await file.sync();
  } catch (err) {
    await file.close();
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  await file.close();
  try {
    await fsp.rename(tmp, path);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  try {
    const d = await fsp.open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    // Directory fsync is not supported everywhere; the rename itself is done.
  }
}

export class CheckpointFile {
  readonly file: string;
  private readonly content: () => string;
  private readonly onError: (err: unknown) => void;
  private readonly flushMs: number;
  private timer?: NodeJS.Timeout;
  private writing?: Promise<void>;
  /** The checkpoints moved while a write was in flight: write again after it. */
  private pendingAfterWrite = false;
  private closed = false;

  /**
   * @param file the checkpoint file
   * @param content the file's content now (called when a write starts)
   * @param onError a failed background write (the next one tries again)
   */
  constructor(
    file: string,
    content: () => string,
    onError: (err: unknown) => void,
    flushMs = CHECKPOINT_FLUSH_MS,
  ) {
    this.file = file;
    this.content = content;
    this.onError = onError;
    this.flushMs = flushMs;
  }

  /** Writes the checkpoints now, synchronously (at start, before anything is delivered). */
  writeNow(): void {
    writeFileAtomic(this.file, this.content());
  }

  /** The checkpoints moved: write them within `flushMs`. */
  schedule(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.writing) {
        // One write at a time: the one in flight reschedules when it ends.
        this.pendingAfterWrite = true;
        return;
      }
      this.flush();
    }, this.flushMs);
    this.timer.unref();
  }

  private flush(): void {
    this.writing = writeFileAtomicAsync(this.file, this.content())
      .catch((err: unknown) => this.onError(err))
      .finally(() => {
        this.writing = undefined;
        if (this.pendingAfterWrite && !this.closed) {
          this.pendingAfterWrite = false;
          this.schedule();
        }
      });
  }

  /** Stops background writes, waits for one in flight, then writes the latest checkpoints. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.writing;
    this.writeNow();
  }
}
