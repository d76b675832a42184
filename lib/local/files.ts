/**
 * Small file helpers shared by the local runtime's durable state (scheduler, secrets, …).
 *
 * Both are synchronous on purpose: the files they handle are small, and a synchronous
 * read-modify-write cannot interleave with another one in the same process.
 */
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

/**
 * Replaces `path` with `data` atomically: readers see either the old content or the new one,
 * never a torn write. Creates missing parent directories, writes a temporary file in the same
 * directory (so the rename cannot cross file systems), fsyncs it, renames it over `path`, then
 * fsyncs the directory where the platform allows it. The temporary file is removed on failure.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'wx', 0o600);
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  try {
    const dirFd = openSync(dir, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  } catch {
    // Directory fsync is not supported everywhere (e.g. Windows); the rename itself is done.
  }
}

/**
 * Reads and parses a JSON file. Returns `fallback` only when the file does not exist; any other
 * read error is rethrown, and content that is not valid JSON throws an error naming the file.
 */
export function readJsonFile<T>(path: string, fallback: T): T {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return fallback;
    throw err;
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new Error(`Corrupt JSON file ${path}: ${(err as Error).message}`, { cause: err });
  }
}
