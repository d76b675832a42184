/**
 * The durable log of one local queue (lib/local/queues.ts): every change (send, receive count,
 * delete, purge) is appended to `${dataDir}/queues/<name>.jsonl` before it is acknowledged, one JSON
 * record a line. Loading replays the log (skipping a torn last line after a crash) and compacts it to
 * one send record per live message; while running the log is compacted again once it holds mostly
 * dead records.
 */
import fs from 'node:fs';
import type { Logger } from './log.ts';
import type { Message, MessageAttributeValue } from './queues-wire.ts';

/** A log is compacted while running once it has this many records and mostly dead ones. */
const COMPACT_MIN_LINES = 1000;

/** What the log of a queue needs from it: its live messages and its open log file. */
export interface QueueLog {
  name: string;
  messages: Map<string, Message>;
  fd: number | undefined;
  file: string;
  /** Records in the log file, to decide when to compact it. */
  logLines: number;
  compactScheduled: boolean;
}

/** Log records, one JSON object a line. */
type LogRecord =
  | {
      op: 'send';
      id: string;
      body: string;
      md5: string;
      attrs?: Record<string, MessageAttributeValue>;
      t: number;
      v?: number;
      n?: number;
      f?: number;
      src?: string;
    }
  | { op: 'recv'; id: string; n: number; f: number }
  | { op: 'del'; id: string }
  | { op: 'purge' };

/** Replays the log of a queue into its messages, then compacts it (and opens it for appending). */
export function loadQueueLog(q: QueueLog, log: Logger): void {
  q.messages.clear();
  if (fs.existsSync(q.file)) {
    const text = fs.readFileSync(q.file, 'utf8');
    let bad = 0;
    for (const line of text.split('\n')) {
      if (!line) continue;
      let r: LogRecord;
      try {
        r = JSON.parse(line) as LogRecord;
      } catch {
        bad++; // a torn last line after a crash
        continue;
      }
      if (r.op === 'send') {
        q.messages.set(r.id, {
          id: r.id,
          body: r.body,
          md5: r.md5,
          ...(r.attrs ? { attrs: r.attrs } : {}),
          sentAt: r.t,
          receiveCount: r.n ?? 0,
          ...(r.f !== undefined ? { firstReceiveAt: r.f } : {}),
          visibleAt: r.v ?? r.t,
          ...(r.src ? { dlqSource: r.src } : {}),
        });
      } else if (r.op === 'recv') {
        const m = q.messages.get(r.id);
        if (m) {
          m.receiveCount = Math.max(m.receiveCount, r.n);
          m.firstReceiveAt ??= r.f;
        }
      } else if (r.op === 'del') {
        q.messages.delete(r.id);
      } else if (r.op === 'purge') {
        q.messages.clear();
      }
    }
    if (bad) log.warn({ queue: q.name, lines: bad }, 'skipped unreadable queue log lines');
  }
  compactQueueLog(q);
  if (q.messages.size > 0) log.info({ queue: q.name, messages: q.messages.size }, 'queue restored');
}

/** Rewrites the log as one send record per live message (written aside, fsynced, renamed over). */
function compactQueueLog(q: QueueLog): void {
  const tmp = `${q.file}.${process.pid}.tmp`;
  const lines = [...q.messages.values()].map((m) => JSON.stringify(sendRecord(m)) + '\n').join('');
  fs.writeFileSync(tmp, lines);
  const tfd = fs.openSync(tmp, 'r+');
  fs.fsyncSync(tfd);
  fs.closeSync(tfd);
  if (q.fd !== undefined) fs.closeSync(q.fd);
  q.fd = undefined;
  fs.renameSync(tmp, q.file);
  q.fd = fs.openSync(q.file, 'a');
  q.logLines = q.messages.size;
}

/** The log record that recreates a message as it is now. */
export function sendRecord(m: Message): LogRecord {
  return {
    op: 'send',
    id: m.id,
    body: m.body,
    md5: m.md5,
    ...(m.attrs ? { attrs: m.attrs } : {}),
    t: m.sentAt,
    ...(m.visibleAt > m.sentAt && m.receiveCount === 0 ? { v: m.visibleAt } : {}),
    ...(m.receiveCount ? { n: m.receiveCount } : {}),
    ...(m.firstReceiveAt !== undefined ? { f: m.firstReceiveAt } : {}),
    ...(m.dlqSource ? { src: m.dlqSource } : {}),
  };
}

/** Appends one record (synchronously); schedules a compaction when the log is mostly dead records. */
export function appendToQueueLog(q: QueueLog, record: LogRecord): void {
  if (q.fd === undefined) throw new Error(`Queue "${q.name}" is not open`);
  fs.writeSync(q.fd, JSON.stringify(record) + '\n');
  q.logLines++;
  // Compacted later, never here: an operation appends before it updates the messages in memory.
  if (!q.compactScheduled && q.logLines > COMPACT_MIN_LINES && q.logLines > 2 * q.messages.size + 100) {
    q.compactScheduled = true;
    setImmediate(() => {
      q.compactScheduled = false;
      if (q.fd !== undefined) compactQueueLog(q);
    });
  }
}
