/**
 * The local runtime's logger: one JSON line per event (pino) on stdout. Level from
 * PAYSTEP_LOG_LEVEL (default `info`; tests default to `silent` unless PAYSTEP_LOG_LEVEL is set).
 *
 * Logging never blocks and never stops the platform (docs/architecture.md, "Logs"): a log reader
 * that stalls, restarts or dies costs log lines, never a payment. Every line goes to the process's
 * own stdout/stderr stream (non-blocking libuv writes on a pipe or socket), never to a synchronous
 * or exit-flushed destination: pino's default destination (SonicBoom) flushes at exit and retries a
 * failed write every 100 ms in an `Atomics.wait` loop, forever when the reader is gone, which froze
 * the whole process at shutdown (issue #12). In front of the stream, a `LogOutput`:
 *
 * - keeps at most MAX_PENDING_BYTES waiting for the reader; a line that would go past it is dropped;
 * - after a write error (EPIPE: the reader is gone; ENOSPC; …) drops every further line, and the
 *   error never reaches the process as an unhandled `error` event;
 * - counts dropped lines and reports them in one line once the reader catches up.
 *
 * `guardStdio()` (called by `npm start`, lib/local/main.ts) puts the same guard in front of
 * `process.stdout.write`/`process.stderr.write`, so the handlers' Powertools logger (which prints
 * through `console` or its own `Console` over process.stdout) and anything else printing in the
 * process get the same treatment without knowing where they run.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

/** How much output may wait for a slow reader, per stream (bytes, counted as string length). */
export const MAX_PENDING_BYTES = 1 << 20;

type WriteCallback = (err?: Error | null) => void;
type WriteFn = (
  chunk: string | Uint8Array,
  encoding?: BufferEncoding | WriteCallback,
  cb?: WriteCallback,
) => boolean;

export interface LogOutputStats {
  /** Lines (writes) handed to the stream. */
  written: number;
  /** Lines dropped: the reader was too far behind, or gone. */
  dropped: number;
  /** The write error that ended output on this stream, if any (`EPIPE`: the reader is gone). */
  failed?: string;
}

/** A bounded, non-blocking, drop-on-failure writer in front of one output stream. */
export class LogOutput {
  private readonly stream: NodeJS.WritableStream & { writableLength: number; destroyed: boolean };
  private readonly rawWrite: WriteFn;
  private readonly maxPending: number;
  private written = 0;
  private dropped = 0;
  private unreported = 0;
  private failed?: string;

  constructor(
    stream: NodeJS.WritableStream & { writableLength: number; destroyed: boolean },
    opts: { maxPendingBytes?: number } = {},
  ) {
    this.stream = stream;
    this.rawWrite = (stream.write as WriteFn).bind(stream);
    this.maxPending = opts.maxPendingBytes ?? MAX_PENDING_BYTES;
    // A permanent listener: an EPIPE on stdout must not become an uncaught exception.
    stream.on('error', (err: NodeJS.ErrnoException) => {
      this.failed ??= err.code ?? err.message;
    });
    // Once the reader has caught up, say how much it missed.
    stream.on('drain', () => this.reportDropped());
  }

  stats(): LogOutputStats {
    return { written: this.written, dropped: this.dropped, ...(this.failed ? { failed: this.failed } : {}) };
  }

  /** Writes one chunk (a line) or drops it; never throws, never blocks, never waits. */
  write(chunk: string | Uint8Array, encoding?: BufferEncoding | WriteCallback, cb?: WriteCallback): boolean {
    const callback = typeof encoding === 'function' ? encoding : cb;
    if (
      this.failed !== undefined ||
      this.stream.destroyed ||
      this.stream.writableLength + chunk.length > this.maxPending
    ) {
      this.dropped++;
      this.unreported++;
      if (callback) process.nextTick(callback);
      return true;
    }
    this.reportDropped();
    this.written++;
    try {
      this.rawWrite(chunk, encoding, cb);
    } catch (err) {
      this.failed ??= (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    }
    // Never ask a writer to wait for 'drain': lines that cannot be written are dropped instead.
    return true;
  }

  private reportDropped(): void {
    if (!this.unreported || this.failed !== undefined || this.stream.destroyed) return;
    const n = this.unreported;
    this.unreported = 0;
    const line = JSON.stringify({
      level: 40,
      time: new Date().toISOString(),
      name: 'paystep',
      dropped: n,
      msg: `${n} log lines dropped: the log reader was not keeping up`,
    });
    try {
      this.rawWrite(line + '\n');
    } catch {
      /* the next error event marks the stream failed */
    }
  }
}

let stdout: LogOutput | undefined;
let stderr: LogOutput | undefined;
let guarded = false;

function stdoutOutput(): LogOutput {
  return (stdout ??= new LogOutput(process.stdout));
}

/**
 * Routes every write to process.stdout and process.stderr through a LogOutput (bounded, dropped on
 * failure), and makes a terminal non-blocking too (Node writes to a TTY synchronously). For the
 * runtime's own process (`npm start`); idempotent.
 */
export function guardStdio(): void {
  if (guarded) return;
  guarded = true;
  for (const stream of [process.stdout, process.stderr]) {
    if (stream.isTTY) {
      const handle = (stream as unknown as { _handle?: { setBlocking?: (b: boolean) => number } })._handle;
      handle?.setBlocking?.(false);
    }
  }
  const out = stdoutOutput();
  const err = (stderr ??= new LogOutput(process.stderr));
  process.stdout.write = out.write.bind(out) as typeof process.stdout.write;
  process.stderr.write = err.write.bind(err) as typeof process.stderr.write;
}

/** What happened to the process's log output so far. */
export function logOutputStats(): { stdout: LogOutputStats; stderr?: LogOutputStats } {
  return { stdout: stdoutOutput().stats(), ...(stderr ? { stderr: stderr.stats() } : {}) };
}

export function createLogger(name = 'paystep'): Logger {
  const level = process.env.PAYSTEP_LOG_LEVEL ?? (process.env.JEST_WORKER_ID ? 'silent' : 'info');
  const destination = { write: (line: string) => stdoutOutput().write(line) };
  return pino({ name, level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}
