/**
 * Append-only JSON-lines journal: the local runtime's durable record of what happened.
 *
 * Each `append` is one `write(2)` of one line to a file opened with O_APPEND, so a crash loses at
 * most the record being written (a torn last line is detected and dropped on load). Records reach
 * the OS page cache before the caller continues; set PAYSTEP_FSYNC=1 to fsync each record as well
 * (survives power loss, costs ~1 ms per record on most disks).
 */
import fs from 'node:fs';
import path from 'node:path';

export class Journal<T> {
  private fd: number | undefined;
  private readonly file: string;
  private readonly fsync = process.env.PAYSTEP_FSYNC === '1';

  constructor(file: string) {
    this.file = file;
  }

  /** Reads every intact record. A torn final line (crash while writing) is ignored. */
  load(): T[] {
    if (!fs.existsSync(this.file)) return [];
    const text = fs.readFileSync(this.file, 'utf8');
    const out: T[] = [];
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      if (!line) continue;
      try {
        out.push(JSON.parse(line) as T);
      } catch (err) {
        if (i >= lines.length - 2) break; // torn tail
        throw new Error(`journal ${this.file} is corrupt at line ${i + 1}: ${(err as Error).message}`);
      }
    }
    return out;
  }

  /** Replaces the journal's content with `records` (atomically), then opens it for appending. */
  rewrite(records: Iterable<T>): void {
    this.close();
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    const fd = fs.openSync(tmp, 'w');
    try {
      let buf = '';
      for (const r of records) {
        buf += JSON.stringify(r) + '\n';
        if (buf.length > 1 << 20) {
          fs.writeSync(fd, buf);
          buf = '';
        }
      }
      if (buf) fs.writeSync(fd, buf);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.file);
    this.open();
  }

  open(): void {
    if (this.fd !== undefined) return;
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    this.fd = fs.openSync(this.file, 'a');
  }

  append(record: T): void {
    if (this.fd === undefined) this.open();
    fs.writeSync(this.fd as number, JSON.stringify(record) + '\n');
    if (this.fsync) fs.fsyncSync(this.fd as number);
  }

  close(): void {
    if (this.fd === undefined) return;
    fs.closeSync(this.fd);
    this.fd = undefined;
  }
}
