/**
 * A simulator's durable records on disk with only a small index in memory, so that a simulator's
 * memory does not grow with its history (docs/simulators.md, "Storage").
 *
 * One append-only JSON-lines file (`<file>`), one record a line, each under a key: a later record of
 * a key replaces the earlier one, a tombstone (`deleted(rec)`) removes it. Memory keeps, per live
 * key, where its latest line lies (offset, length), a small tag and a number the owner chooses
 * (its kind, an expiry date, a sequence number), about 100 bytes a key; `read` parses the line on
 * demand, and an LRU of the last `cacheSize` records read or written saves the parse.
 *
 * Crash safety is the journal's (lib/local/journal.ts): each record is one `write(2)` to the file
 * opened with O_APPEND before the caller goes on (PAYSTEP_FSYNC=1 fsyncs it too); a line torn by a
 * crash is cut at the next load. Compaction (`compact`) writes the live records to a new file,
 * fsyncs it and renames it over the old one, so a crash leaves either file whole.
 *
 * Fast start: the first line of the file names its generation (`{"gen":…}`, new at each
 * compaction). `<file>.idx.json` (the snapshot, written after a compaction and at `close`) holds
 * the index and the owner's own state (`meta`) as they were at a given size of that generation;
 * `load` restores it and parses only the lines appended after it (none after a clean stop). Without
 * a snapshot of the file's generation (a crash during a compaction, a file from before) it parses
 * the whole file, as the journal did.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface RecordFileOptions<R> {
  /** The file; none: the records stay in memory (a simulator without a data dir). */
  file?: string;
  /** The key a record is stored under. */
  key: (rec: R) => string;
  /** Whether a record is a tombstone (its key is removed). */
  deleted?: (rec: R) => boolean;
  /** The tag (0–255) and number memory keeps for a record, e.g. its kind and expiry (default 0, 0). */
  classify?: (rec: R) => { tag?: number; aux?: number };
  /** Parsed records kept in memory, the most recently used (default 2,000). */
  cacheSize?: number;
}

interface Snapshot {
  v: 1;
  gen: string;
  /** Bytes of the file this snapshot describes (lines after it are parsed at load). */
  size: number;
  lines: number;
  keys: string[];
  off: number[];
  len: number[];
  tag: number[];
  aux: number[];
  meta: unknown;
}

const HEADER_PREFIX = '{"gen":';

export class RecordFile<R> {
  private readonly opts: RecordFileOptions<R>;
  private readonly snapshotFile: string;
  private readonly fsync = process.env.PAYSTEP_FSYNC === '1';
  private readonly cacheSize: number;
  private fd: number | undefined;
  private loaded = false;
  private gen = '';
  private size = 0;
  /** Lines in the file (records, live or not), to decide when to compact. */
  private lineCount = 0;
  /** Key → slot; slots keep the order keys were first stored in. */
  private readonly slots = new Map<string, number>();
  private keys: (string | undefined)[] = [];
  private off: number[] = [];
  private len: number[] = [];
  private tags: number[] = [];
  private auxs: number[] = [];
  private readonly cache = new Map<string, R>();
  /** Without a file: every live record, by slot. */
  private readonly memory: boolean;
  private memRecs: (R | undefined)[] = [];

  constructor(opts: RecordFileOptions<R>) {
    this.opts = opts;
    this.snapshotFile = `${opts.file}.idx.json`;
    this.memory = opts.file === undefined;
    this.cacheSize = opts.cacheSize ?? 2000;
  }

  /**
   * Opens the file and rebuilds the index: from the snapshot and the lines after it, or from every
   * line. `onRecord` sees each line parsed (in file order), `restore` the snapshot's `meta` (before
   * the lines after it). Returns whether the whole file was parsed.
   */
  load(onRecord: (rec: R) => void, restore: (meta: unknown) => void): { fullScan: boolean } {
    if (this.memory) return { fullScan: false };
    this.close();
    this.loaded = true;
    const file = this.opts.file as string;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    if (!fs.existsSync(file)) {
      this.writeNew(() => 0);
      return { fullScan: false };
    }
    this.fd = fs.openSync(file, 'a+');
    this.size = fs.fstatSync(this.fd).size;
    this.gen = this.readHeader();
    const snap = this.gen ? this.readSnapshot() : undefined;
    let from = 0;
    if (snap) {
      this.keys = snap.keys;
      this.off = snap.off;
      this.len = snap.len;
      this.tags = snap.tag;
      this.auxs = snap.aux;
      this.lineCount = snap.lines;
      for (let i = 0; i < this.keys.length; i++) {
        const k = this.keys[i];
        if (k !== undefined && k !== null) this.slots.set(k, i);
        else this.keys[i] = undefined;
      }
      restore(snap.meta);
      from = snap.size;
    }
    this.scan(from, onRecord);
    return { fullScan: !snap };
  }

  /** Appends a record (one write) and indexes it. */
  append(rec: R): void {
    if (this.memory) {
      this.lineCount++;
      this.index(rec, 0, 0);
      const slot = this.slots.get(this.opts.key(rec));
      if (slot !== undefined) this.memRecs[slot] = rec;
      return;
    }
    const fd = this.open();
    const line = Buffer.from(JSON.stringify(rec) + '\n', 'utf8');
    const at = this.size;
    let written = 0;
    while (written < line.length) written += fs.writeSync(fd, line, written, line.length - written);
    if (this.fsync) fs.fsyncSync(fd);
    this.size += line.length;
    this.lineCount++;
    this.index(rec, at, line.length);
    if (!this.opts.deleted?.(rec)) this.remember(this.opts.key(rec), rec);
  }

  /** The latest record of a key (from the cache or the file), or undefined. */
  read(key: string): R | undefined {
    const cached = this.cache.get(key);
    if (cached !== undefined) {
      this.cache.delete(key);
      this.cache.set(key, cached);
      return cached;
    }
    const slot = this.slots.get(key);
    if (slot === undefined) return undefined;
    if (this.memory) return this.memRecs[slot];
    const rec = JSON.parse(
      this.readBytes(this.open(), this.off[slot] as number, this.len[slot] as number).toString('utf8'),
    ) as R;
    this.remember(key, rec);
    return rec;
  }

  has(key: string): boolean {
    return this.slots.has(key);
  }

  tag(key: string): number | undefined {
    const slot = this.slots.get(key);
    return slot === undefined ? undefined : this.tags[slot];
  }

  aux(key: string): number | undefined {
    const slot = this.slots.get(key);
    return slot === undefined ? undefined : this.auxs[slot];
  }

  /** Changes a key's tag in memory only (it must be derivable again from the record at load). */
  retag(key: string, tag: number): void {
    const slot = this.slots.get(key);
    if (slot !== undefined) this.tags[slot] = tag;
  }

  /** Drops a key from the index without a tombstone (the owner drops it again at load: expiry). */
  forget(key: string): void {
    const slot = this.slots.get(key);
    if (slot === undefined) return;
    this.slots.delete(key);
    this.keys[slot] = undefined;
    this.memRecs[slot] = undefined;
    this.cache.delete(key);
    // In memory, nothing compacts: renumber once the holes outnumber the live keys.
    if (this.memory && this.keys.length > 1000 && this.keys.length > 2 * this.slots.size) this.compact(null);
  }

  /** Live keys whose tag passes `match`, in the order first stored (no record is read). */
  *keysWhere(match: (tag: number, aux: number) => boolean): Generator<string> {
    const n = this.keys.length;
    for (let i = 0; i < n; i++) {
      const k = this.keys[i];
      if (k !== undefined && match(this.tags[i] as number, this.auxs[i] as number)) yield k;
    }
  }

  /** Live keys. */
  get count(): number {
    return this.slots.size;
  }

  /** Lines in the file (live or not). */
  get lines(): number {
    return this.lineCount;
  }

  /** Records held parsed in memory (the LRU). */
  get cached(): number {
    return this.cache.size;
  }

  get bytes(): number {
    return this.size;
  }

  /**
   * Rewrites the file with the live records (in the order first stored) under a new generation,
   * then the snapshot with `meta`.
   */
  compact(meta: unknown): void {
    if (this.memory) {
      const live = this.keys.flatMap((k, i) => (k === undefined ? [] : [i]));
      const pick = <T>(a: T[]): T[] => live.map((i) => a[i] as T);
      [this.keys, this.off, this.len, this.tags, this.auxs, this.memRecs] = [
        pick(this.keys),
        pick(this.off),
        pick(this.len),
        pick(this.tags),
        pick(this.auxs),
        pick(this.memRecs),
      ];
      this.slots.clear();
      this.keys.forEach((k, i) => this.slots.set(k as string, i));
      this.lineCount = this.slots.size;
      return;
    }
    if (!this.loaded) return;
    const old = this.open();
    const live: number[] = [];
    for (let i = 0; i < this.keys.length; i++) if (this.keys[i] !== undefined) live.push(i);
    const keys: string[] = [];
    const off: number[] = [];
    const len: number[] = [];
    const tags: number[] = [];
    const auxs: number[] = [];
    const window: { start: number; buf: Buffer } = { start: 0, buf: Buffer.alloc(0) };
    const lineOf = (o: number, n: number): Buffer => {
      if (o < window.start || o + n > window.start + window.buf.length) {
        window.start = o;
        window.buf = this.readBytes(old, o, Math.max(n, Math.min(1 << 20, this.size - o)));
      }
      return window.buf.subarray(o - window.start, o - window.start + n);
    };
    this.writeNew((fd, at) => {
      let pos = at;
      let chunk: Buffer[] = [];
      let chunkBytes = 0;
      const flush = () => {
        const b = Buffer.concat(chunk, chunkBytes);
        let w = 0;
        while (w < b.length) w += fs.writeSync(fd, b, w, b.length - w);
        chunk = [];
        chunkBytes = 0;
      };
      for (const i of live) {
        const n = this.len[i] as number;
        chunk.push(Buffer.from(lineOf(this.off[i] as number, n)));
        chunkBytes += n;
        keys.push(this.keys[i] as string);
        off.push(pos);
        len.push(n);
        tags.push(this.tags[i] as number);
        auxs.push(this.auxs[i] as number);
        pos += n;
        if (chunkBytes > 1 << 20) flush();
      }
      flush();
      return live.length;
    }, old);
    this.keys = keys;
    this.off = off;
    this.len = len;
    this.tags = tags;
    this.auxs = auxs;
    this.slots.clear();
    for (let i = 0; i < keys.length; i++) this.slots.set(keys[i] as string, i);
    this.writeSnapshot(meta);
  }

  /** Writes the snapshot (so that the next load parses nothing) and closes the file. */
  close(meta?: unknown): void {
    if (this.fd === undefined) return;
    if (meta !== undefined) this.writeSnapshot(meta);
    fs.closeSync(this.fd);
    this.fd = undefined;
  }

  // --- internals -------------------------------------------------------------------------------

  private index(rec: R, at: number, n: number): void {
    const key = this.opts.key(rec);
    if (this.opts.deleted?.(rec)) {
      this.forget(key);
      return;
    }
    const { tag = 0, aux = 0 } = this.opts.classify?.(rec) ?? {};
    let slot = this.slots.get(key);
    if (slot === undefined) {
      slot = this.keys.length;
      this.slots.set(key, slot);
      this.keys.push(key);
      this.off.push(at);
      this.len.push(n);
      this.tags.push(tag);
      this.auxs.push(aux);
    } else {
      this.off[slot] = at;
      this.len[slot] = n;
      this.tags[slot] = tag;
      this.auxs[slot] = aux;
    }
  }

  private remember(key: string, rec: R): void {
    this.cache.delete(key);
    this.cache.set(key, rec);
    if (this.cache.size > this.cacheSize) this.cache.delete(this.cache.keys().next().value as string);
  }

  /** The file, opened again after `close` (a simulator stopped and started again). */
  private open(): number {
    if (this.fd !== undefined) return this.fd;
    if (!this.loaded) throw new Error(`${this.opts.file} is not loaded`);
    this.fd = fs.openSync(this.opts.file as string, 'a+');
    this.size = fs.fstatSync(this.fd).size;
    return this.fd;
  }

  private readBytes(fd: number, o: number, n: number): Buffer {
    const buf = Buffer.alloc(n);
    let read = 0;
    while (read < n) {
      const r = fs.readSync(fd, buf, read, n - read, o + read);
      if (r === 0) throw new Error(`${this.opts.file} ends at ${o + read}, inside a record`);
      read += r;
    }
    return buf;
  }

  /** The generation named by the file's first line ('' if it has none). */
  private readHeader(): string {
    if (this.size === 0) return '';
    const head = this.readBytes(this.fd as number, 0, Math.min(200, this.size)).toString('utf8');
    if (!head.startsWith(HEADER_PREFIX)) return '';
    const nl = head.indexOf('\n');
    if (nl < 0) return '';
    try {
      return String((JSON.parse(head.slice(0, nl)) as { gen: string }).gen);
    } catch {
      return '';
    }
  }

  private readSnapshot(): Snapshot | undefined {
    let snap: Snapshot;
    try {
      snap = JSON.parse(fs.readFileSync(this.snapshotFile, 'utf8')) as Snapshot;
    } catch {
      return undefined; // none, or torn: the whole file is parsed
    }
    if (snap.v !== 1 || snap.gen !== this.gen || snap.size > this.size) return undefined;
    return snap;
  }

  private writeSnapshot(meta: unknown): void {
    const snap: Snapshot = {
      v: 1,
      gen: this.gen,
      size: this.size,
      lines: this.lineCount,
      keys: this.keys as string[],
      off: this.off,
      len: this.len,
      tag: this.tags,
      aux: this.auxs,
      meta,
    };
    const tmp = `${this.snapshotFile}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(snap));
    fs.renameSync(tmp, this.snapshotFile);
  }

  /** Parses the lines from `from` to the end, indexing each; cuts a torn last line. */
  private scan(from: number, onRecord: (rec: R) => void): void {
    const fd = this.fd as number;
    let pos = from;
    let carry: Buffer = Buffer.alloc(0);
    let lineNo = 0;
    const chunkSize = 8 << 20;
    while (pos < this.size) {
      const chunk = this.readBytes(fd, pos, Math.min(chunkSize, this.size - pos));
      const buf = carry.length ? Buffer.concat([carry, chunk]) : chunk;
      const base = pos - carry.length;
      let start = 0;
      for (let nl = buf.indexOf(10, start); nl >= 0; nl = buf.indexOf(10, start)) {
        const at = base + start;
        const text = buf.toString('utf8', start, nl);
        start = nl + 1;
        lineNo++;
        if (!text) continue;
        if (at === 0 && text.startsWith(HEADER_PREFIX)) {
          this.lineCount++;
          continue;
        }
        let rec: R;
        try {
          rec = JSON.parse(text) as R;
        } catch (err) {
          // Only the last line can be torn by a crash; anything else is corruption.
          if (base + start < this.size)
            throw new Error(`${this.opts.file} is corrupt at line ${lineNo}: ${(err as Error).message}`);
          this.truncate(at);
          return;
        }
        this.lineCount++;
        this.index(rec, at, nl + 1 - (at - base));
        onRecord(rec);
      }
      carry = buf.subarray(start);
      pos += chunk.length;
    }
    if (carry.length) this.truncate(this.size - carry.length); // a torn last line without newline
  }

  private truncate(at: number): void {
    fs.ftruncateSync(this.fd as number, at);
    this.size = at;
  }

  /**
   * Writes a new generation: the header, then what `body` writes (returning its lines), atomically
   * over the file, and opens it for appending.
   */
  private writeNew(body: (fd: number, at: number) => number, old?: number): void {
    const gen = randomUUID();
    const header = Buffer.from(`${HEADER_PREFIX}${JSON.stringify(gen)}}\n`, 'utf8');
    const file = this.opts.file as string;
    const tmp = `${file}.${process.pid}.tmp`;
    const fd = fs.openSync(tmp, 'w');
    let lines: number;
    try {
      fs.writeSync(fd, header);
      lines = body(fd, header.length);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
    if (old !== undefined) fs.closeSync(old);
    this.fd = fs.openSync(file, 'a+');
    this.size = fs.fstatSync(this.fd).size;
    this.lineCount = lines + 1;
    this.gen = gen;
  }
}
