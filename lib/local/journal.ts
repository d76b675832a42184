/**
 * Append-only JSON-lines journal: the local runtime's durable record of what happened.
 *
 * Each `append` is one `write(2)` of one line to a file opened with O_APPEND, so a crash loses at
 * most the record being written (a torn last line is detected and dropped on load). Records reach
 * the OS page cache before the caller continues; set PAYSTEP_FSYNC=1 to fsync each record as well
 * (survives power loss, costs ~1 ms per record on most disks).
 *
 * A journal is read in chunks (`each`, `load`), never as one string, so its size is not bounded by
 * the longest string V8 makes (512 MiB). `append` and `rewrite` tell where each line is, and
 * `readAt` reads one line back: a caller may keep a record's position instead of the record
 * (lib/local/dynamodb-streams.ts keeps a long stream backlog on disk that way).
 */
import fs from 'node:fs';
import path from 'node:path';

/** Where a line is in the journal file: its first byte and its length without the newline. */
export interface LinePosition {
  offset: number;
  length: number;
}

const CHUNK = 4 << 20;
const NEWLINE = 0x0a;

export class Journal<T> {
  private fd: number | undefined;
  /** A descriptor for `readAt`, opened on first use (and on the new file after a rewrite). */
  private readFd: number | undefined;
  /** Bytes in the file: where the next appended line starts. */
  private size = 0;
  private readonly file: string;
  private readonly fsync = process.env.PAYSTEP_FSYNC === '1';

  constructor(file: string) {
    this.file = file;
  }

  /** Reads every intact record. A torn final line (crash while writing) is ignored. */
  load(): T[] {
    const out: T[] = [];
    this.each((record) => out.push(record));
    return out;
  }

  /**
   * Calls `fn` with every intact record, in file order, with its position and index. A torn final
   * line (crash while writing) is ignored; a line that does not parse and is not the last throws.
   */
  each(fn: (record: T, at: LinePosition, index: number) => void): void {
    if (!fs.existsSync(this.file)) return;
    const fd = fs.openSync(this.file, 'r');
    try {
      const chunk = Buffer.allocUnsafe(CHUNK);
      let carry = Buffer.alloc(0);
      let carryOffset = 0; // file offset of carry[0]
      let index = 0;
      let lineNo = 0;
      let bad: { lineNo: number; message: string } | undefined;
      const line = (buf: Buffer, start: number, end: number) => {
        lineNo++;
        if (end === start) return;
        if (bad) throw new Error(`journal ${this.file} is corrupt at line ${bad.lineNo}: ${bad.message}`);
        let record: T;
        try {
          record = JSON.parse(buf.toString('utf8', start, end)) as T;
        } catch (err) {
          bad = { lineNo, message: (err as Error).message }; // torn tail, unless a line follows
          return;
        }
        fn(record, { offset: carryOffset + start, length: end - start }, index++);
      };
      for (;;) {
        const n = fs.readSync(fd, chunk, 0, CHUNK, null);
        if (n === 0) break;
        const data = carry.length > 0 ? Buffer.concat([carry, chunk.subarray(0, n)]) : chunk.subarray(0, n);
        let start = 0;
        for (let nl = data.indexOf(NEWLINE, start); nl >= 0; nl = data.indexOf(NEWLINE, start)) {
          line(data, start, nl);
          start = nl + 1;
        }
        carry = Buffer.from(data.subarray(start)); // a copy: `chunk` is reused
        carryOffset += start;
      }
      if (carry.length > 0) line(carry, 0, carry.length);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** The record of the line at `at` (a position `append`, `each` or `rewrite` gave). */
  readAt(at: LinePosition): T {
    if (this.readFd === undefined) this.readFd = fs.openSync(this.file, 'r');
    const buf = Buffer.allocUnsafe(at.length);
    const n = fs.readSync(this.readFd, buf, 0, at.length, at.offset);
    if (n !== at.length) throw new Error(`journal ${this.file}: short read at ${at.offset}`);
    return JSON.parse(buf.toString('utf8')) as T;
  }

  /**
   * Replaces the journal's content with `records` (atomically), then opens it for appending.
   * `onLine(i, at)` tells where the i-th record is in the new file. `records` may be a generator
   * that reads the old content with `readAt`: the old file stays readable until the new one is in
   * place.
   */
  rewrite(records: Iterable<T>, onLine?: (index: number, at: LinePosition) => void): void {
    this.closeAppend();
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    const fd = fs.openSync(tmp, 'w');
    try {
      const parts: Buffer[] = [];
      let buffered = 0;
      let offset = 0;
      let index = 0;
      for (const r of records) {
        const bytes = Buffer.from(JSON.stringify(r) + '\n', 'utf8');
        onLine?.(index++, { offset, length: bytes.length - 1 });
        offset += bytes.length;
        parts.push(bytes);
        buffered += bytes.length;
        if (buffered > 1 << 20) {
          fs.writeSync(fd, Buffer.concat(parts));
          parts.length = 0;
          buffered = 0;
        }
      }
      if (parts.length > 0) fs.writeSync(fd, Buffer.concat(parts));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.file);
    this.closeRead(); // it reads the old file
    this.open();
  }

  open(): void {
    if (this.fd !== undefined) return;
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    this.fd = fs.openSync(this.file, 'a');
    this.size = fs.fstatSync(this.fd).size;
  }

  /** Appends a record; returns where its line is. */
  append(record: T): LinePosition {
    if (this.fd === undefined) this.open();
    const bytes = Buffer.from(JSON.stringify(record) + '\n', 'utf8');
    fs.writeSync(this.fd as number, bytes);
    if (this.fsync) fs.fsyncSync(this.fd as number);
    const at = { offset: this.size, length: bytes.length - 1 };
    this.size += bytes.length;
    return at;
  }

  close(): void {
    this.closeAppend();
    this.closeRead();
  }

  private closeAppend(): void {
    if (this.fd === undefined) return;
    fs.closeSync(this.fd);
    this.fd = undefined;
  }

  private closeRead(): void {
    if (this.readFd === undefined) return;
    fs.closeSync(this.readFd);
    this.readFd = undefined;
  }
}
