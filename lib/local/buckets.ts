/**
 * Local S3: an S3-compatible HTTP server that keeps each bucket as a plain folder.
 *
 * - Object `s3://<bucket>/<key>` is the file `${dataDir}/buckets/<bucket>/<key>`, so people can open
 *   reports straight from the folder. Files dropped into the folder by hand are objects too.
 * - Metadata (content type, user metadata, ETag, checksum) lives in a sidecar tree
 *   `${dataDir}/buckets-meta/<bucket>/<key>.json`. A sidecar that no longer matches its file (size or
 *   mtime changed by hand) is ignored and the ETag recomputed.
 * - Writes are atomic: the body goes to `${dataDir}/buckets-tmp/` and is renamed into place.
 *
 * Clients use `@aws-sdk/client-s3` unchanged with `endpoint: <start() result>`. The endpoint host is an
 * IP address, so the SDK addresses buckets path-style (`http://127.0.0.1:PORT/<bucket>/<key>`) without
 * `forcePathStyle`; virtual-hosted requests are not understood.
 *
 * Operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket (empty), ListObjectsV2, ListObjects,
 * PutObject (plain and `aws-chunked` bodies, conditional `If-None-Match: *` / `If-Match`),
 * GetObject / HeadObject (Range, If-Match, If-None-Match), DeleteObject, DeleteObjects.
 * Anything else answers `501 NotImplemented`. No authentication: SigV4 headers are accepted and ignored;
 * a GetObject presigned in its query string is checked (expiry and signature, lib/local/s3-presigned.ts)
 * and its `response-*` overrides applied, because the console hands such URLs to browsers.
 *
 * Keys the folder layout cannot hold are refused with `400 InvalidArgument`: empty, `.` or `..` path
 * segments (which also covers keys ending in `/`), NUL bytes, and a key that would need a file where
 * another key needs a folder (`a` and `a/b`).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { createLogger, type Logger } from './log.ts';
import { checkPresigned } from './s3-presigned.ts';
import { s3Accesses, type LocalPermissions } from './permissions.ts';
import { listenOn } from './ports.ts';

export interface LocalBucketsOptions {
  /** Root of the runtime's data; buckets live in `${dataDir}/buckets/<bucket>/`. */
  dataDir: string;
  /** Buckets that exist from the start (their folders are created). */
  buckets: string[];
  logger?: Logger;
  /** Called after an object is written (PutObject succeeded). Must not throw. */
  onObjectCreated?: (bucket: string, key: string, size: number) => void;
  /** Checks each calling function's grants (lib/local/permissions.ts); none when absent. */
  permissions?: LocalPermissions;
}

/** Stored beside each object in `${dataDir}/buckets-meta/<bucket>/<key>.json`. */
interface ObjectMeta {
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

interface ObjectInfo {
  meta: ObjectMeta;
  lastModified: Date;
}

const S3_NS = 'http://s3.amazonaws.com/doc/2006-03-01/';
const MAX_KEY_BYTES = 1024;
const STANDARD_HEADERS: [keyof ObjectMeta, string][] = [
  ['cacheControl', 'cache-control'],
  ['contentDisposition', 'content-disposition'],
  ['contentEncoding', 'content-encoding'],
  ['contentLanguage', 'content-language'],
  ['expires', 'expires'],
];
/** Headers GetObject lets the request set with `response-<header>=` query parameters. */
const RESPONSE_OVERRIDES = [
  'content-type',
  'content-language',
  'expires',
  'cache-control',
  'content-disposition',
  'content-encoding',
];
const CHECKSUM_ALGORITHMS = ['crc32', 'crc32c', 'crc64nvme', 'sha1', 'sha256'];

class S3Error extends Error {
  readonly code: string;
  readonly status: number;
  readonly extra: Record<string, string>;
  constructor(status: number, code: string, message: string, extra: Record<string, string> = {}) {
    super(message);
    this.name = 'S3Error';
    this.status = status;
    this.code = code;
    this.extra = extra;
  }
}

const xmlEscape = (s: string) =>
  s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!,
  );

const xmlUnescape = (s: string) =>
  s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos);/g, (_m, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(parseInt(e.slice(1), 10));
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[e]!;
  });

const el = (name: string, value: string | number | boolean) =>
  `<${name}>${xmlEscape(String(value))}</${name}>`;

const xmlDoc = (body: string) => `<?xml version="1.0" encoding="UTF-8"?>\n${body}`;

/** S3 orders keys by their UTF-8 bytes. */
const compareKeys = (a: string, b: string) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

const isoMs = (d: Date) => d.toISOString();

const isMissing = (e: unknown) => (e as NodeJS.ErrnoException)?.code === 'ENOENT';

/**
 * Decodes an `aws-chunked` body (`<hex size>[;chunk-signature=…]\r\n<data>\r\n … 0\r\n[trailers]\r\n`),
 * as sent by the SDK for streaming uploads (signed, unsigned, with or without trailing checksums).
 * Yields the payload; the trailers (lower-cased names) are put into `trailers`.
 */
async function* decodeAwsChunked(
  source: AsyncIterable<Buffer>,
  trailers: Record<string, string>,
): AsyncGenerator<Buffer> {
  let pending: Buffer = Buffer.alloc(0);
  let state: 'size' | 'data' | 'data-end' | 'trailer' | 'done' = 'size';
  let remaining = 0;
  const bad = (why: string) => new S3Error(400, 'IncompleteBody', `Malformed aws-chunked body: ${why}`);
  for await (const piece of source) {
    pending = pending.length ? Buffer.concat([pending, piece]) : piece;
    for (;;) {
      if (state === 'done') {
        pending = Buffer.alloc(0);
        break;
      }
      if (state === 'data') {
        if (pending.length === 0) break;
        const take = Math.min(remaining, pending.length);
        yield pending.subarray(0, take);
        pending = pending.subarray(take);
        remaining -= take;
        if (remaining === 0) state = 'data-end';
        continue;
      }
      const eol = pending.indexOf('\r\n');
      if (eol < 0) {
        if (pending.length > 64 * 1024) throw bad('line too long');
        break;
      }
      const line = pending.subarray(0, eol).toString('latin1');
      pending = pending.subarray(eol + 2);
      if (state === 'data-end') {
        if (line !== '') throw bad('missing CRLF after chunk data');
        state = 'size';
      } else if (state === 'size') {
        const sizeText = line.split(';', 1)[0]!.trim();
        if (!/^[0-9a-fA-F]+$/.test(sizeText)) throw bad('bad chunk size');
        remaining = parseInt(sizeText, 16);
        state = remaining === 0 ? 'trailer' : 'data';
      } else {
        if (line === '') {
          state = 'done';
          continue;
        }
        const colon = line.indexOf(':');
        if (colon > 0) trailers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
    }
  }
  // The SDK ends an unsigned body without trailers right after `0\r\n`; a missing last CRLF is fine.
  const end = state as string;
  if (end !== 'trailer' && end !== 'done') throw bad('body ended before its last chunk');
  if (end === 'trailer' && pending.length > 0) {
    const line = pending.toString('latin1');
    const colon = line.indexOf(':');
    if (colon > 0) trailers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
}

/** Incremental hash of one of the checksum algorithms S3 accepts (those node can compute). */
function checksumHasher(algorithm: string): { update(b: Buffer): void; digest(): string } | undefined {
  if (algorithm === 'crc32') {
    let value = 0;
    return {
      update: (b) => {
        value = crc32(b, value);
      },
      digest: () => {
        const out = Buffer.alloc(4);
        out.writeUInt32BE(value >>> 0);
        return out.toString('base64');
      },
    };
  }
  if (algorithm === 'sha1' || algorithm === 'sha256') {
    const h = createHash(algorithm);
    return { update: (b) => h.update(b), digest: () => h.digest('base64') };
  }
  return undefined;
}

export class LocalBuckets {
  private readonly dataDir: string;
  private readonly root: string;
  private readonly metaRoot: string;
  private readonly tmpRoot: string;
  private readonly configured: string[];
  private readonly known = new Set<string>();
  private readonly log: Logger;
  private readonly onObjectCreated?: (bucket: string, key: string, size: number) => void;
  private readonly permissions?: LocalPermissions;
  private readonly locks = new Map<string, Promise<unknown>>();
  private server: Server | undefined;
  private url: string | undefined;

  constructor(options: LocalBucketsOptions) {
    this.dataDir = options.dataDir;
    this.root = path.join(options.dataDir, 'buckets');
    this.metaRoot = path.join(options.dataDir, 'buckets-meta');
    this.tmpRoot = path.join(options.dataDir, 'buckets-tmp');
    this.configured = [...options.buckets];
    for (const b of this.configured) {
      if (!isValidBucketName(b)) throw new Error(`Invalid bucket name "${b}"`);
    }
    this.log = options.logger ?? createLogger('buckets');
    this.onObjectCreated = options.onObjectCreated;
    this.permissions = options.permissions;
  }

  /** Folder holding the objects of a bucket. */
  bucketDir(name: string): string {
    if (!isValidBucketName(name)) throw new Error(`Invalid bucket name "${name}"`);
    return path.join(this.root, name);
  }

  /** The endpoint URL once started (`http://127.0.0.1:PORT`). */
  get endpoint(): string | undefined {
    return this.url;
  }

  async start(port = 0): Promise<string> {
    if (this.server) throw new Error('LocalBuckets already started');
    await fsp.mkdir(this.root, { recursive: true });
    await fsp.mkdir(this.metaRoot, { recursive: true });
    await fsp.rm(this.tmpRoot, { recursive: true, force: true });
    await fsp.mkdir(this.tmpRoot, { recursive: true });
    for (const b of this.configured) await fsp.mkdir(this.bucketDir(b), { recursive: true });
    for (const entry of await fsp.readdir(this.root, { withFileTypes: true })) {
      if (entry.isDirectory() && isValidBucketName(entry.name)) this.known.add(entry.name);
    }
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => this.fail(req, res, err));
    });
    server.keepAliveTimeout = 5000;
    await listenOn(server, port);
    this.server = server;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    this.permissions?.serve(this.url);
    this.log.info({ endpoint: this.url, dataDir: this.dataDir, buckets: [...this.known] }, 'buckets started');
    return this.url;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    this.url = undefined;
    await new Promise<void>((resolve) => {
      // Requests under way may finish; keep-alive connections still open after 2 s are cut.
      const force = setTimeout(() => server.closeAllConnections(), 2000);
      server.close(() => {
        clearTimeout(force);
        resolve();
      });
      server.closeIdleConnections();
    });
    await Promise.allSettled([...this.locks.values()]);
    this.log.info('buckets stopped');
  }

  // ---------------------------------------------------------------- request routing

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const rawPath = q >= 0 ? rawUrl.slice(0, q) : rawUrl;
    const query = new URLSearchParams(q >= 0 ? rawUrl.slice(q + 1) : '');
    const method = req.method ?? 'GET';
    const slash = rawPath.indexOf('/', 1);
    const bucket = decodeURIComponent(slash >= 0 ? rawPath.slice(1, slash) : rawPath.slice(1));
    const rawKey = slash >= 0 ? rawPath.slice(slash + 1) : '';
    let key: string;
    try {
      key = decodeURIComponent(rawKey);
    } catch {
      throw new S3Error(400, 'InvalidURI', 'Could not parse the specified URI.');
    }
    res.setHeader('x-amz-request-id', randomBytes(8).toString('hex').toUpperCase());
    res.setHeader('x-amz-id-2', randomBytes(24).toString('base64'));
    this.log.debug({ method, bucket, key }, 's3 request');
    const denial = this.permissions?.check(req, () => s3Accesses(method, bucket, key, query));
    if (denial) throw new S3Error(403, 'AccessDenied', denial);
    if (query.has('X-Amz-Signature')) {
      const bad = await checkPresigned(this.url!, method, bucket, key, query);
      if (bad) throw new S3Error(bad.status, bad.code, bad.message);
    }

    if (!bucket) {
      if (method === 'GET') return this.listBuckets(res);
      throw new S3Error(
        405,
        'MethodNotAllowed',
        'The specified method is not allowed against this resource.',
      );
    }
    if (!key) return this.bucketRequest(method, bucket, query, req, res);

    if (!this.known.has(bucket)) throw noSuchBucket(bucket);
    for (const sub of [
      'acl',
      'tagging',
      'uploads',
      'uploadId',
      'attributes',
      'retention',
      'legal-hold',
      'torrent',
    ]) {
      if (query.has(sub)) throw notImplemented(`?${sub}`);
    }
    switch (method) {
      case 'PUT':
        if (req.headers['x-amz-copy-source']) throw notImplemented('CopyObject');
        return this.putObject(bucket, key, req, res);
      case 'GET':
      case 'HEAD':
        return this.getObject(bucket, key, req, res, method === 'HEAD', query);
      case 'DELETE':
        return this.deleteObject(bucket, key, res);
      default:
        throw new S3Error(
          405,
          'MethodNotAllowed',
          'The specified method is not allowed against this resource.',
        );
    }
  }

  private async bucketRequest(
    method: string,
    bucket: string,
    query: URLSearchParams,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> {
    if (method === 'PUT' && [...query.keys()].length === 0) return this.createBucket(bucket, req, res);
    if (!this.known.has(bucket)) throw noSuchBucket(bucket);
    if (method === 'HEAD') {
      await drain(req);
      res.writeHead(200, { 'x-amz-bucket-region': 'local', 'content-length': 0 });
      res.end();
      return;
    }
    if (method === 'GET' && query.has('location')) {
      return sendXml(res, 200, `<LocationConstraint xmlns="${S3_NS}">local</LocationConstraint>`);
    }
    if (method === 'GET' && [...query.keys()].every((k) => LIST_PARAMS.has(k))) {
      return this.listObjects(bucket, query, res);
    }
    if (method === 'POST' && query.has('delete')) return this.deleteObjects(bucket, req, res);
    if (method === 'DELETE' && [...query.keys()].length === 0) return this.deleteBucket(bucket, res);
    throw notImplemented(`${method} bucket ?${[...query.keys()].join('&')}`);
  }

  private fail(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    const e =
      err instanceof S3Error
        ? err
        : err instanceof URIError
          ? new S3Error(400, 'InvalidURI', 'Could not parse the specified URI.')
          : new S3Error(500, 'InternalError', 'We encountered an internal error. Please try again.');
    if (!(err instanceof S3Error))
      this.log.error({ err, method: req.method, url: req.url }, 's3 request failed');
    else this.log.debug({ code: e.code, status: e.status, method: req.method }, 's3 error');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    // Let the rest of a refused upload arrive so that the client sees the response, not a reset.
    if (!req.complete) req.resume();
    const requestId = String(res.getHeader('x-amz-request-id') ?? '');
    if (req.method === 'HEAD' || e.status === 304) {
      res.writeHead(e.status, { 'content-length': 0 });
      res.end();
      return;
    }
    const extra = Object.entries(e.extra)
      .map(([k, v]) => el(k, v))
      .join('');
    sendXml(
      res,
      e.status,
      `<Error>${el('Code', e.code)}${el('Message', e.message)}${extra}${el('RequestId', requestId)}</Error>`,
    );
  }

  // ---------------------------------------------------------------- buckets

  private listBuckets(res: ServerResponse): void {
    const buckets = [...this.known]
      .sort(compareKeys)
      .map((b) => `<Bucket>${el('Name', b)}${el('CreationDate', '1970-01-01T00:00:00.000Z')}</Bucket>`)
      .join('');
    sendXml(
      res,
      200,
      `<ListAllMyBucketsResult xmlns="${S3_NS}"><Owner>${el('ID', 'local')}${el('DisplayName', 'local')}</Owner>` +
        `<Buckets>${buckets}</Buckets></ListAllMyBucketsResult>`,
    );
  }

  private async createBucket(bucket: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    await drain(req);
    if (!isValidBucketName(bucket)) {
      throw new S3Error(400, 'InvalidBucketName', 'The specified bucket is not valid.', {
        BucketName: bucket,
      });
    }
    if (this.known.has(bucket)) {
      throw new S3Error(
        409,
        'BucketAlreadyOwnedByYou',
        'Your previous request to create the named bucket succeeded and you already own it.',
        { BucketName: bucket },
      );
    }
    await fsp.mkdir(this.bucketDir(bucket), { recursive: true });
    this.known.add(bucket);
    res.writeHead(200, { location: `/${bucket}`, 'content-length': 0 });
    res.end();
  }

  private async deleteBucket(bucket: string, res: ServerResponse): Promise<void> {
    if ((await this.allKeys(bucket, '')).length > 0) {
      throw new S3Error(409, 'BucketNotEmpty', 'The bucket you tried to delete is not empty', {
        BucketName: bucket,
      });
    }
    await fsp.rm(this.bucketDir(bucket), { recursive: true, force: true });
    await fsp.rm(path.join(this.metaRoot, bucket), { recursive: true, force: true });
    this.known.delete(bucket);
    res.writeHead(204);
    res.end();
  }

  // ---------------------------------------------------------------- objects

  private paths(bucket: string, key: string): { file: string; meta: string } {
    checkKey(key);
    return {
      file: path.join(this.root, bucket, ...key.split('/')),
      meta: path.join(this.metaRoot, bucket, ...key.split('/')) + '.json',
    };
  }

  /** Serialises writes and deletes of one key (conditional puts must not race). */
  private async withLock<T>(bucket: string, key: string, fn: () => Promise<T>): Promise<T> {
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

  private async putObject(
    bucket: string,
    key: string,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> {
    const { file, meta: metaFile } = this.paths(bucket, key);
    const h = req.headers;
    const contentSha = String(h['x-amz-content-sha256'] ?? '');
    const chunked =
      contentSha.startsWith('STREAMING-') || String(h['content-encoding'] ?? '').includes('aws-chunked');

    // Which checksum the client sent (header now, or trailer after the body).
    const declaredTrailer = String(h['x-amz-trailer'] ?? '').toLowerCase();
    let algorithm = String(h['x-amz-sdk-checksum-algorithm'] ?? '').toLowerCase();
    if (!algorithm) algorithm = CHECKSUM_ALGORITHMS.find((a) => h[`x-amz-checksum-${a}`] !== undefined) ?? '';
    if (!algorithm && declaredTrailer.startsWith('x-amz-checksum-')) algorithm = declaredTrailer.slice(15);
    const checksum = algorithm ? checksumHasher(algorithm) : undefined;
    const payloadSha = /^[0-9a-f]{64}$/.test(contentSha) ? createHash('sha256') : undefined;

    const md5 = createHash('md5');
    const trailers: Record<string, string> = {};
    const body: AsyncIterable<Buffer> = chunked ? decodeAwsChunked(req, trailers) : req;
    const tmp = path.join(this.tmpRoot, randomUUID());
    let size = 0;
    const fh = await fsp.open(tmp, 'w');
    try {
      for await (const piece of body) {
        md5.update(piece);
        checksum?.update(piece);
        payloadSha?.update(piece);
        size += piece.length;
        await fh.write(piece);
      }
    } catch (err) {
      await fh.close();
      await fsp.rm(tmp, { force: true });
      throw err;
    }
    await fh.close();
    try {
      if (chunked && h['x-amz-decoded-content-length'] !== undefined) {
        if (Number(h['x-amz-decoded-content-length']) !== size) {
          throw new S3Error(
            400,
            'IncompleteBody',
            'You did not provide the number of bytes specified by the header.',
          );
        }
      }
      if (payloadSha && payloadSha.digest('hex') !== contentSha) {
        throw new S3Error(
          400,
          'XAmzContentSHA256Mismatch',
          "The provided 'x-amz-content-sha256' header does not match what was computed.",
        );
      }
      let stored: ObjectMeta['checksum'];
      if (algorithm) {
        const sent = String(
          h[`x-amz-checksum-${algorithm}`] ?? trailers[`x-amz-checksum-${algorithm}`] ?? '',
        );
        const computed = checksum?.digest();
        if (sent && computed && sent !== computed) {
          throw new S3Error(
            400,
            'BadDigest',
            `The ${algorithm.toUpperCase()} you specified did not match the calculated checksum.`,
          );
        }
        const value = sent || computed;
        if (value) stored = { algorithm, value };
      }

      const meta: ObjectMeta = {
        etag: `"${md5.digest('hex')}"`,
        size,
        mtimeMs: 0,
        contentType: h['content-type'] ?? 'binary/octet-stream',
        metadata: {},
        ...(stored ? { checksum: stored } : {}),
      };
      for (const [field, header] of STANDARD_HEADERS) {
        let v = h[header];
        if (header === 'content-encoding' && typeof v === 'string') {
          v = v
            .split(',')
            .map((s) => s.trim())
            .filter((s) => s && s !== 'aws-chunked')
            .join(',');
        }
        if (typeof v === 'string' && v) (meta as unknown as Record<string, string>)[field] = v;
      }
      for (const [name, value] of Object.entries(h)) {
        if (name.startsWith('x-amz-meta-') && value !== undefined) {
          meta.metadata[name.slice(11)] = Array.isArray(value) ? value.join(',') : value;
        }
      }

      await this.withLock(bucket, key, async () => {
        const current = await this.readInfo(bucket, key);
        const ifNoneMatch = h['if-none-match'];
        const ifMatch = h['if-match'];
        if (
          ifNoneMatch !== undefined &&
          current &&
          (ifNoneMatch === '*' || etagMatches(ifNoneMatch, current))
        ) {
          throw preconditionFailed(ifNoneMatch === '*' ? 'If-None-Match' : 'If-None-Match');
        }
        if (ifMatch !== undefined) {
          if (!current) throw noSuchKey(bucket, key);
          if (!etagMatches(ifMatch, current)) throw preconditionFailed('If-Match');
        }
        await this.placeFile(tmp, file, key);
        const st = await fsp.stat(file);
        meta.mtimeMs = st.mtimeMs;
        await this.writeMeta(metaFile, meta);
      });
      const headers: Record<string, string | number> = { etag: meta.etag, 'content-length': 0 };
      if (meta.checksum) headers[`x-amz-checksum-${meta.checksum.algorithm}`] = meta.checksum.value;
      res.writeHead(200, headers);
      res.end();
      this.log.debug({ bucket, key, size }, 'object written');
      this.onObjectCreated?.(bucket, key, size);
    } finally {
      await fsp.rm(tmp, { force: true });
    }
  }

  /** Moves a finished upload into the bucket folder, creating parent folders. */
  private async placeFile(tmp: string, file: string, key: string): Promise<void> {
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

  private async writeMeta(metaFile: string, meta: ObjectMeta): Promise<void> {
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
  private async readInfo(bucket: string, key: string): Promise<ObjectInfo | undefined> {
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

  private async metaFor(
    file: string,
    metaFile: string,
    st: { size: number; mtimeMs: number },
  ): Promise<ObjectMeta> {
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

  private async getObject(
    bucket: string,
    key: string,
    req: IncomingMessage,
    res: ServerResponse,
    headOnly: boolean,
    query: URLSearchParams,
  ): Promise<void> {
    const { file, meta: metaFile } = this.paths(bucket, key);
    await drain(req);
    let fh;
    try {
      fh = await fsp.open(file, 'r');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') throw noSuchKey(bucket, key);
      throw err;
    }
    let handedOver = false;
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw noSuchKey(bucket, key);
      const meta = await this.metaFor(file, metaFile, st);
      const info: ObjectInfo = { meta, lastModified: st.mtime };
      const ifMatch = req.headers['if-match'];
      const ifNoneMatch = req.headers['if-none-match'];
      if (ifMatch !== undefined && !etagMatches(ifMatch, info)) throw preconditionFailed('If-Match');
      if (ifNoneMatch !== undefined && etagMatches(ifNoneMatch, info)) {
        throw new S3Error(304, 'NotModified', 'Not Modified');
      }

      const headers: Record<string, string | number> = {
        'content-type': meta.contentType ?? 'binary/octet-stream',
        etag: meta.etag,
        'last-modified': st.mtime.toUTCString(),
        'accept-ranges': 'bytes',
      };
      for (const [field, header] of STANDARD_HEADERS) {
        const v = meta[field];
        if (typeof v === 'string') headers[header] = v;
      }
      for (const [name, value] of Object.entries(meta.metadata)) headers[`x-amz-meta-${name}`] = value;
      // GetObject's response overrides (`response-content-type=…`), as a presigned download uses them.
      for (const header of RESPONSE_OVERRIDES) {
        const v = query.get(`response-${header}`);
        if (v !== null) headers[header] = v;
      }

      let start = 0;
      let end = st.size - 1;
      let status = 200;
      const range = parseRange(req.headers.range, st.size);
      if (range === 'unsatisfiable') {
        throw new S3Error(416, 'InvalidRange', 'The requested range is not satisfiable', {
          RangeRequested: String(req.headers.range),
          ActualObjectSize: String(st.size),
        });
      }
      if (range) {
        [start, end] = range;
        status = 206;
        headers['content-range'] = `bytes ${start}-${end}/${st.size}`;
      } else if (
        meta.checksum &&
        String(req.headers['x-amz-checksum-mode'] ?? '').toUpperCase() === 'ENABLED'
      ) {
        headers[`x-amz-checksum-${meta.checksum.algorithm}`] = meta.checksum.value;
        headers['x-amz-checksum-type'] = 'FULL_OBJECT';
      }
      const length = Math.max(0, end - start + 1);
      headers['content-length'] = length;
      res.writeHead(status, headers);
      if (headOnly || length === 0) {
        res.end();
        return;
      }
      const stream = fh.createReadStream({ start, end, autoClose: true });
      handedOver = true;
      stream.on('error', (err) => {
        this.log.error({ err, bucket, key }, 'object read failed');
        res.destroy(err);
      });
      res.on('close', () => stream.destroy());
      stream.pipe(res);
    } finally {
      if (!handedOver) await fh.close();
    }
  }

  private async deleteObject(bucket: string, key: string, res: ServerResponse): Promise<void> {
    await this.removeObject(bucket, key);
    res.writeHead(204);
    res.end();
  }

  private async removeObject(bucket: string, key: string): Promise<void> {
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

  private async deleteObjects(bucket: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const piece of req as AsyncIterable<Buffer>) {
      total += piece.length;
      if (total > 2 * 1024 * 1024)
        throw new S3Error(400, 'MalformedXML', 'The XML you provided was too large.');
      chunks.push(piece);
    }
    const xml = Buffer.concat(chunks).toString('utf8');
    const quiet = /<Quiet>\s*true\s*<\/Quiet>/i.test(xml);
    const keys = [...xml.matchAll(/<Object>[\s\S]*?<Key>([\s\S]*?)<\/Key>[\s\S]*?<\/Object>/g)].map((m) =>
      xmlUnescape(m[1]!),
    );
    if (keys.length > 1000) throw new S3Error(400, 'MalformedXML', 'At most 1000 keys per request.');
    let out = '';
    for (const key of keys) {
      try {
        await this.removeObject(bucket, key);
        if (!quiet) out += `<Deleted>${el('Key', key)}</Deleted>`;
      } catch (err) {
        const e = err instanceof S3Error ? err : new S3Error(500, 'InternalError', 'Internal error');
        out += `<Error>${el('Key', key)}${el('Code', e.code)}${el('Message', e.message)}</Error>`;
      }
    }
    sendXml(res, 200, `<DeleteResult xmlns="${S3_NS}">${out}</DeleteResult>`);
  }

  // ---------------------------------------------------------------- listing

  /** All keys of a bucket under a prefix, in S3 order. */
  private async allKeys(bucket: string, prefix: string): Promise<string[]> {
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

  private async listObjects(bucket: string, query: URLSearchParams, res: ServerResponse): Promise<void> {
    const v2 = query.get('list-type') === '2';
    const prefix = query.get('prefix') ?? '';
    const delimiter = query.get('delimiter') ?? '';
    const encode = query.get('encoding-type') === 'url';
    const maxKeysText = query.get('max-keys');
    let maxKeys = 1000;
    if (maxKeysText !== null) {
      if (!/^\d+$/.test(maxKeysText)) {
        throw new S3Error(
          400,
          'InvalidArgument',
          'Provided max-keys not an integer or within integer range',
          {
            ArgumentName: 'max-keys',
            ArgumentValue: maxKeysText,
          },
        );
      }
      maxKeys = Math.min(1000, Number(maxKeysText));
    }
    const token = query.get('continuation-token');
    const startAfter = query.get('start-after') ?? '';
    const marker = query.get('marker') ?? '';

    let after = v2 ? startAfter : marker;
    let skipPrefix = '';
    if (v2 && token !== null) {
      const decoded = decodeToken(token);
      if (!decoded) {
        throw new S3Error(400, 'InvalidArgument', 'The continuation token provided is incorrect', {
          ArgumentName: 'continuation-token',
        });
      }
      after = decoded.after;
      skipPrefix = decoded.commonPrefix ? decoded.after : '';
    } else if (!v2 && delimiter && marker.endsWith(delimiter) && marker.startsWith(prefix)) {
      skipPrefix = marker;
    }

    const keys = await this.allKeys(bucket, prefix);
    const contents: string[] = [];
    const prefixes: string[] = [];
    let last = '';
    let lastIsPrefix = false;
    let truncated = false;
    for (const key of keys) {
      if (after && compareKeys(key, after) <= 0) continue;
      if (skipPrefix && key.startsWith(skipPrefix)) continue;
      let commonPrefix: string | undefined;
      if (delimiter) {
        const i = key.indexOf(delimiter, prefix.length);
        if (i >= 0) commonPrefix = key.slice(0, i + delimiter.length);
      }
      if (commonPrefix !== undefined && lastIsPrefix && commonPrefix === last) continue;
      if (contents.length + prefixes.length >= maxKeys) {
        truncated = maxKeys > 0;
        break;
      }
      if (commonPrefix !== undefined) {
        prefixes.push(commonPrefix);
        last = commonPrefix;
        lastIsPrefix = true;
      } else {
        contents.push(key);
        last = key;
        lastIsPrefix = false;
      }
    }

    const enc = (s: string) => (encode ? encodeURIComponent(s).replace(/%2F/g, '/') : s);
    const items: string[] = [];
    for (const key of contents) {
      const info = await this.readInfo(bucket, key);
      if (!info) continue; // deleted while listing
      items.push(
        '<Contents>' +
          el('Key', enc(key)) +
          el('LastModified', isoMs(info.lastModified)) +
          el('ETag', info.meta.etag) +
          (info.meta.checksum ? el('ChecksumAlgorithm', info.meta.checksum.algorithm.toUpperCase()) : '') +
          (info.meta.checksum ? el('ChecksumType', 'FULL_OBJECT') : '') +
          el('Size', info.meta.size) +
          (v2 ? '' : `<Owner>${el('ID', 'local')}${el('DisplayName', 'local')}</Owner>`) +
          el('StorageClass', 'STANDARD') +
          '</Contents>',
      );
    }
    const common = prefixes.map((p) => `<CommonPrefixes>${el('Prefix', enc(p))}</CommonPrefixes>`).join('');
    let head = el('Name', bucket) + el('Prefix', enc(prefix));
    if (v2) {
      if (token !== null) head += el('ContinuationToken', token);
      if (truncated) head += el('NextContinuationToken', encodeToken(last, lastIsPrefix));
      if (query.has('start-after')) head += el('StartAfter', enc(startAfter));
      head += el('KeyCount', items.length + prefixes.length);
    } else {
      head += el('Marker', enc(marker));
      if (truncated && delimiter) head += el('NextMarker', enc(last));
    }
    head += el('MaxKeys', maxKeys);
    if (delimiter) head += el('Delimiter', enc(delimiter));
    if (encode) head += el('EncodingType', 'url');
    head += el('IsTruncated', truncated);
    sendXml(
      res,
      200,
      `<ListBucketResult xmlns="${S3_NS}">${head}${items.join('')}${common}</ListBucketResult>`,
    );
  }
}

const LIST_PARAMS = new Set([
  'list-type',
  'prefix',
  'delimiter',
  'encoding-type',
  'max-keys',
  'continuation-token',
  'start-after',
  'fetch-owner',
  'marker',
  'x-id',
]);

function isValidBucketName(name: string): boolean {
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

const noSuchBucket = (bucket: string) =>
  new S3Error(404, 'NoSuchBucket', 'The specified bucket does not exist', { BucketName: bucket });

const noSuchKey = (bucket: string, key: string) =>
  new S3Error(404, 'NoSuchKey', 'The specified key does not exist.', { Key: key, BucketName: bucket });

const preconditionFailed = (condition: string) =>
  new S3Error(412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', {
    Condition: condition,
  });

const notImplemented = (what: string) =>
  new S3Error(
    501,
    'NotImplemented',
    `A header or operation you provided (${what}) is not implemented locally.`,
  );

function etagMatches(header: string, info: ObjectInfo): boolean {
  return header
    .split(',')
    .map((s) => s.trim())
    .some((t) => t === '*' || t === info.meta.etag || `"${t}"` === info.meta.etag);
}

/** `[start, end]` inclusive, `undefined` for no (or an ignored) range, or `'unsatisfiable'`. */
function parseRange(
  header: string | undefined,
  size: number,
): [number, number] | 'unsatisfiable' | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return [Math.max(0, size - suffix), size - 1];
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size) return 'unsatisfiable';
  if (end < start) return undefined;
  return [start, end];
}

function encodeToken(after: string, commonPrefix: boolean): string {
  return Buffer.from(JSON.stringify({ a: after, p: commonPrefix ? 1 : 0 }), 'utf8').toString('base64url');
}

function decodeToken(token: string): { after: string; commonPrefix: boolean } | undefined {
  try {
    const v = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { a?: unknown; p?: unknown };
    if (typeof v.a !== 'string') return undefined;
    return { after: v.a, commonPrefix: v.p === 1 };
  } catch {
    return undefined;
  }
}

function sendXml(res: ServerResponse, status: number, body: string): void {
  const buf = Buffer.from(xmlDoc(body), 'utf8');
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': buf.length });
  res.end(buf);
}

async function drain(req: IncomingMessage): Promise<void> {
  if (req.complete) return;
  for await (const _ of req) {
    // discard
  }
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
