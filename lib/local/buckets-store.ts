/**
 * How the local buckets (lib/local/buckets.ts) keep objects on disk: object `s3://<bucket>/<key>` is
 * the file `${dataDir}/buckets/<bucket>/<key>`, its metadata a sidecar
 * `${dataDir}/buckets-meta/<bucket>/<key>.json` (ignored and recomputed when it no longer matches its
 * file), and writes land in `${dataDir}/buckets-tmp/` first and are renamed into place. Keys the
 * folder layout cannot hold are refused here; writes and deletes of one key are serialised.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import path from 'node:path';
import { S3Error, compareKeys } from './buckets-wire.ts';
import type { Logger } from './log.ts';

/** Stored beside each object in `${dataDir}/buckets-meta/<bucket>/<key>.json`. */
export interface ObjectMeta {
  etag: string;
  size: number;
  mtimeMs: number;
  contentType?: string;
  cacheControl?: string;
  contentDisposition?: string;
  contentEncoding?: string;
  contentLanguage?: string;
  expires?: string;
  metadata: Record<string, string>;
  checksum?: { algorithm: string; value: string };
}

export interface ObjectInfo {
  meta: ObjectMeta;
  lastModified: Date;
}

const MAX_KEY_BYTES = 1024;

const isMissing = (e: unknown) => (e as NodeJS.ErrnoException)?.code === 'ENOENT';

export function isValidBucketName(name: string): boolean {
  return /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) && !name.includes('..');
}

function checkKey(key: string): void {
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) {
    throw new S3Error(400, 'KeyTooLongError', 'Your key is too long');
  }
  if (key.includes('\0') || key.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new S3Error(
      400,
      'InvalidArgument',
      'The local bucket store keeps objects as files: keys with empty, "." or ".." path segments are not supported.',
      { ArgumentName: 'key', ArgumentValue: key },
    );
  }
}

function keyConflict(key: string): S3Error {
  return new S3Error(
    400,
    'InvalidArgument',
    'The local bucket store keeps objects as files: this key would need a file where a folder of other keys is ' +
      '(or the reverse).',
    { ArgumentName: 'key', ArgumentValue: key },
  );
}

async function removeEmptyParents(dir: string, top: string): Promise<void> {
  let d = dir;
  while (d.startsWith(top + path.sep)) {
    try {
      await fsp.rmdir(d);
    } catch {
      return; // not empty (or gone): stop
    }
    d = path.dirname(d);
  }
}

/** The folders of the buckets: objects, their metadata sidecars, uploads in progress. */
export class BucketFolders {
  readonly root: string;
  readonly metaRoot: string;
  readonly tmpRoot: string;
  /** The buckets that exist (their folders). */
  readonly known = new Set<string>();
  /** Writes and deletes under way, per key. */
  readonly locks = new Map<string, Promise<unknown>>();
  private readonly log: Logger;

  constructor(dataDir: string, log: Logger) {
    this.root = path.join(dataDir, 'buckets');
    this.metaRoot = path.join(dataDir, 'buckets-meta');
    this.tmpRoot = path.join(dataDir, 'buckets-tmp');
    this.log = log;
  }

  paths(bucket: string, key: string): { file: string; meta: string } {
    checkKey(key);
    return {
      file: path.join(this.root, bucket, ...key.split('/')),
      meta: path.join(this.metaRoot, bucket, ...key.split('/')) + '.json',
    };
  }

  /** Serialises writes and deletes of one key (conditional puts must not race). */
  async withLock<T>(bucket: string, key: string, fn: () => Promise<T>): Promise<T> {
    const id = `${bucket}/${key}`;
    const prev = this.locks.get(id) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.locks.set(id, settled);
    void settled.then(() => {
      if (this.locks.get(id) === settled) this.locks.delete(id);
    });
    return run;
  }

  /** Moves a finished upload into the bucket folder, creating parent folders. */
  async placeFile(tmp: string, file: string, key: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        const st = await fsp.stat(file).catch((e: unknown) => (isMissing(e) ? undefined : Promise.reject(e)));
        if (st?.isDirectory()) throw keyConflict(key);
        await fsp.mkdir(path.dirname(file), { recursive: true });
        await fsp.rename(tmp, file);
        return;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOTDIR' || code === 'EEXIST' || code === 'EISDIR') throw keyConflict(key);
        // A concurrent delete may have removed the (empty) parent folder between mkdir and rename.
        if (code === 'ENOENT' && attempt < 3) continue;
        throw err;
      }
    }
  }

  async writeMeta(metaFile: string, meta: ObjectMeta): Promise<void> {
    const tmp = path.join(this.tmpRoot, randomUUID());
    try {
      await fsp.writeFile(tmp, JSON.stringify(meta));
      await fsp.mkdir(path.dirname(metaFile), { recursive: true });
      await fsp.rename(tmp, metaFile);
    } catch (err) {
      // The object itself is in place; without a sidecar it is served with recomputed defaults.
      await fsp.rm(tmp, { force: true });
      this.log.warn({ err, metaFile }, 'could not write object metadata');
    }
  }

  /** Object metadata, or undefined if there is no such object. Repairs stale or missing sidecars. */
  async readInfo(bucket: string, key: string): Promise<ObjectInfo | undefined> {
    const { file, meta: metaFile } = this.paths(bucket, key);
    let st;
    try {
      st = await fsp.stat(file);
    } catch (err) {
      if (isMissing(err) || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
      throw err;
    }
    if (!st.isFile()) return undefined;
    return { meta: await this.metaFor(file, metaFile, st), lastModified: st.mtime };
  }

  async metaFor(file: string, metaFile: string, st: { size: number; mtimeMs: number }): Promise<ObjectMeta> {
    try {
      const meta = JSON.parse(await fsp.readFile(metaFile, 'utf8')) as ObjectMeta;
      if (meta.size === st.size && meta.mtimeMs === st.mtimeMs) return meta;
    } catch {
      // missing or unreadable sidecar: recompute below
    }
    const md5 = createHash('md5');
    for await (const piece of createReadStream(file)) md5.update(piece as Buffer);
    return { etag: `"${md5.digest('hex')}"`, size: st.size, mtimeMs: st.mtimeMs, metadata: {} };
  }

  async removeObject(bucket: string, key: string): Promise<void> {
    const { file, meta } = this.paths(bucket, key);
    await this.withLock(bucket, key, async () => {
      for (const [f, top] of [
        [file, path.join(this.root, bucket)],
        [meta, path.join(this.metaRoot, bucket)],
      ] as const) {
        try {
          const st = await fsp.stat(f);
          if (!st.isFile()) continue;
          await fsp.rm(f, { force: true });
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
          continue;
        }
        await removeEmptyParents(path.dirname(f), top);
      }
    });
  }

  /** All keys of a bucket under a prefix, in S3 order. */
  async allKeys(bucket: string, prefix: string): Promise<string[]> {
    const base = path.join(this.root, bucket);
    const slash = prefix.lastIndexOf('/');
    const dirPart = slash >= 0 ? prefix.slice(0, slash) : '';
    if (dirPart.split('/').some((s) => s === '..' || s === '.')) return [];
    const start = dirPart ? path.join(base, ...dirPart.split('/')) : base;
    let entries;
    try {
      entries = await fsp.readdir(start, { recursive: true, withFileTypes: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return [];
      throw err;
    }
    const keys: string[] = [];
    for (const entry of entries) {
      if (!entry.isFile()) continue;
      const rel = path.relative(base, path.join(entry.parentPath, entry.name));
      const key = rel.split(path.sep).join('/');
      if (key.startsWith(prefix)) keys.push(key);
    }
    return keys.sort(compareKeys);
  }
}
