/**
 * Finished Step Functions executions on disk, so that memory does not grow with history
 * (lib/local/stepfunctions.ts keeps only running executions in memory).
 *
 * Two files under `<dataDir>/stepfunctions/`:
 *
 * - `finished.dat`: one record per finished execution (its input, output, error and its whole
 *   history), each JSON compressed with raw deflate, appended back to back. Execution histories are
 *   repetitive JSON (state inputs and outputs) and compress about tenfold.
 * - `finished.idx.jsonl`: one line per record, appended after the record: the execution's ARN,
 *   status, start and stop dates, and where its record lies in `finished.dat`. Loaded at start;
 *   it is all that stays in memory of a finished execution (about 200 bytes), enough for
 *   ListExecutions, for the name-reuse check of StartExecution and for a late task token's answer.
 *   DescribeExecution and GetExecutionHistory read the record on demand.
 *
 * Crash safety: the record is written before its index line, and the index line before the
 * execution's `end` in the executions journal. A crash before the index line leaves bytes past
 * the last indexed record (cut at the next start) and the execution RUNNING in the journal
 * (re-driven, as before); a crash after it leaves the execution finished here, and the journal's
 * records of it are dropped at the next start. A torn index line is the journal's torn tail.
 * Set PAYSTEP_FSYNC=1 to fsync both files as the journal does.
 */
import fs from 'node:fs';
import path from 'node:path';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { Journal } from './journal.ts';

export type FinishedStatus = 'SUCCEEDED' | 'FAILED' | 'ABORTED' | 'TIMED_OUT';

/** What memory keeps of a finished execution. */
export interface FinishedSummary {
  status: FinishedStatus;
  startDate: number;
  stopDate: number;
  /** Where its record lies in `finished.dat`. */
  off: number;
  len: number;
}

/** A finished execution's whole record. */
export interface FinishedRecord<H> {
  arn: string;
  machine: string;
  name: string;
  input: string;
  status: FinishedStatus;
  startDate: number;
  stopDate: number;
  output?: string;
  error?: string;
  cause?: string;
  history: H[];
}

interface IndexLine {
  arn: string;
  st: FinishedStatus;
  s: number;
  e: number;
  o: number;
  n: number;
}

export class ExecutionArchive<H> {
  private readonly dataFile: string;
  private readonly index: Journal<IndexLine>;
  private readonly indexFile: string;
  private readonly fsync = process.env.PAYSTEP_FSYNC === '1';
  private fd: number | undefined;
  private size = 0;
  /** By execution ARN, in the order they finished. */
  readonly summaries = new Map<string, FinishedSummary>();

  constructor(dir: string) {
    this.dataFile = path.join(dir, 'finished.dat');
    this.indexFile = path.join(dir, 'finished.idx.jsonl');
    this.index = new Journal<IndexLine>(this.indexFile);
  }

  /** Loads the index and cuts `finished.dat` after its last indexed record (a crash's leftover). */
  load(): void {
    this.summaries.clear();
    let end = 0;
    const lines = this.index.load();
    for (const l of lines) {
      this.summaries.set(l.arn, { status: l.st, startDate: l.s, stopDate: l.e, off: l.o, len: l.n });
      end = Math.max(end, l.o + l.n);
    }
    // A line torn by a crash would join the next one appended: rewrite the index without it.
    if (tornTail(this.indexFile)) this.index.rewrite(lines);
    fs.mkdirSync(path.dirname(this.dataFile), { recursive: true });
    this.fd = fs.openSync(this.dataFile, fs.existsSync(this.dataFile) ? 'r+' : 'w+');
    const actual = fs.fstatSync(this.fd).size;
    if (actual < end)
      throw new Error(`${this.dataFile} is shorter (${actual} bytes) than its index says (${end})`);
    if (actual > end) fs.ftruncateSync(this.fd, end);
    this.size = end;
    this.index.open();
  }

  has(arn: string): boolean {
    return this.summaries.has(arn);
  }

  get(arn: string): FinishedSummary | undefined {
    return this.summaries.get(arn);
  }

  /** Stores a finished execution: its record, then its index line. */
  add(rec: FinishedRecord<H>): void {
    if (this.fd === undefined) throw new Error('the execution archive is not loaded');
    const bytes = deflateRawSync(Buffer.from(JSON.stringify(rec), 'utf8'));
    const off = this.size;
    let written = 0;
    while (written < bytes.length)
      written += fs.writeSync(this.fd, bytes, written, bytes.length - written, off + written);
    if (this.fsync) fs.fsyncSync(this.fd);
    this.size = off + bytes.length;
    this.index.append({
      arn: rec.arn,
      st: rec.status,
      s: rec.startDate,
      e: rec.stopDate,
      o: off,
      n: bytes.length,
    });
    this.summaries.set(rec.arn, {
      status: rec.status,
      startDate: rec.startDate,
      stopDate: rec.stopDate,
      off,
      len: bytes.length,
    });
  }

  /** The whole record of a finished execution (read from disk), or undefined. */
  read(arn: string): FinishedRecord<H> | undefined {
    const s = this.summaries.get(arn);
    if (!s || this.fd === undefined) return undefined;
    const buf = Buffer.alloc(s.len);
    let read = 0;
    while (read < s.len) {
      const n = fs.readSync(this.fd, buf, read, s.len - read, s.off + read);
      if (n === 0) throw new Error(`${this.dataFile} ends inside the record of ${arn}`);
      read += n;
    }
    return JSON.parse(inflateRawSync(buf).toString('utf8')) as FinishedRecord<H>;
  }

  /** Bytes of records on disk. */
  get bytes(): number {
    return this.size;
  }

  close(): void {
    this.index.close();
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

/** Whether `file` exists, is not empty and does not end with a newline. */
function tornTail(file: string): boolean {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size === 0) return false;
    const last = Buffer.alloc(1);
    fs.readSync(fd, last, 0, 1, size - 1);
    return last[0] !== 0x0a;
  } finally {
    fs.closeSync(fd);
  }
}
