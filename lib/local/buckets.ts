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
 *
 * This module serves the API (routing, buckets, PutObject, GetObject, deletes); the folder layout
 * and its locks are lib/local/buckets-store.ts, listings lib/local/buckets-listing.ts, and S3's
 * errors, XML and headers lib/local/buckets-wire.ts.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { listObjects, LIST_PARAMS } from './buckets-listing.ts';
import { BucketFolders, isValidBucketName, type ObjectInfo, type ObjectMeta } from './buckets-store.ts';
import {
  CHECKSUM_ALGORITHMS,
  RESPONSE_OVERRIDES,
  S3Error,
  S3_NS,
  STANDARD_HEADERS,
  checksumHasher,
  compareKeys,
  decodeAwsChunked,
  drain,
  el,
  etagMatches,
  noSuchBucket,
  noSuchKey,
  notImplemented,
  parseRange,
  preconditionFailed,
  sendXml,
  xmlUnescape,
} from './buckets-wire.ts';
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

export class LocalBuckets {
  private readonly dataDir: string;
  private readonly configured: string[];
  private readonly folders: BucketFolders;
  private readonly log: Logger;
  private readonly onObjectCreated?: (bucket: string, key: string, size: number) => void;
  private readonly permissions?: LocalPermissions;
  private server: Server | undefined;
  private url: string | undefined;

  constructor(options: LocalBucketsOptions) {
    this.dataDir = options.dataDir;
    this.configured = [...options.buckets];
    for (const b of this.configured) {
      if (!isValidBucketName(b)) throw new Error(`Invalid bucket name "${b}"`);
    }
    this.log = options.logger ?? createLogger('buckets');
    this.folders = new BucketFolders(options.dataDir, this.log);
    this.onObjectCreated = options.onObjectCreated;
    this.permissions = options.permissions;
  }

  /** Folder holding the objects of a bucket. */
  bucketDir(name: string): string {
    if (!isValidBucketName(name)) throw new Error(`Invalid bucket name "${name}"`);
    return path.join(this.folders.root, name);
  }

  /** The endpoint URL once started (`http://127.0.0.1:PORT`). */
  get endpoint(): string | undefined {
    return this.url;
  }

  async start(port = 0): Promise<string> {
    if (this.server) throw new Error('LocalBuckets already started');
    await fsp.mkdir(this.folders.root, { recursive: true });
    await fsp.mkdir(this.folders.metaRoot, { recursive: true });
    await fsp.rm(this.folders.tmpRoot, { recursive: true, force: true });
    await fsp.mkdir(this.folders.tmpRoot, { recursive: true });
    for (const b of this.configured) await fsp.mkdir(this.bucketDir(b), { recursive: true });
    for (const entry of await fsp.readdir(this.folders.root, { withFileTypes: true })) {
      if (entry.isDirectory() && isValidBucketName(entry.name)) this.folders.known.add(entry.name);
    }
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => this.fail(req, res, err));
    });
    server.keepAliveTimeout = 5000;
    await listenOn(server, port);
    this.server = server;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    this.permissions?.serve(this.url);
    this.log.info(
      { endpoint: this.url, dataDir: this.dataDir, buckets: [...this.folders.known] },
      'buckets started',
    );
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
    await Promise.allSettled([...this.folders.locks.values()]);
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

    if (!this.folders.known.has(bucket)) throw noSuchBucket(bucket);
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
    if (!this.folders.known.has(bucket)) throw noSuchBucket(bucket);
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
      return listObjects(this.folders, bucket, query, res);
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
    const buckets = [...this.folders.known]
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
    if (this.folders.known.has(bucket)) {
      throw new S3Error(
        409,
        'BucketAlreadyOwnedByYou',
        'Your previous request to create the named bucket succeeded and you already own it.',
        { BucketName: bucket },
      );
    }
    await fsp.mkdir(this.bucketDir(bucket), { recursive: true });
    this.folders.known.add(bucket);
    res.writeHead(200, { location: `/${bucket}`, 'content-length': 0 });
    res.end();
  }

  private async deleteBucket(bucket: string, res: ServerResponse): Promise<void> {
    if ((await this.folders.allKeys(bucket, '')).length > 0) {
      throw new S3Error(409, 'BucketNotEmpty', 'The bucket you tried to delete is not empty', {
        BucketName: bucket,
      });
    }
    await fsp.rm(this.bucketDir(bucket), { recursive: true, force: true });
    await fsp.rm(path.join(this.folders.metaRoot, bucket), { recursive: true, force: true });
    this.folders.known.delete(bucket);
    res.writeHead(204);
    res.end();
  }

  // ---------------------------------------------------------------- objects

  private async putObject(
    bucket: string,
    key: string,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> {
    const { file, meta: metaFile } = this.folders.paths(bucket, key);
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
    const tmp = path.join(this.folders.tmpRoot, randomUUID());
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

      await this.folders.withLock(bucket, key, async () => {
        const current = await this.folders.readInfo(bucket, key);
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
        await this.folders.placeFile(tmp, file, key);
        const st = await fsp.stat(file);
        meta.mtimeMs = st.mtimeMs;
        await this.folders.writeMeta(metaFile, meta);
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

  private async getObject(
    bucket: string,
    key: string,
    req: IncomingMessage,
    res: ServerResponse,
    headOnly: boolean,
    query: URLSearchParams,
  ): Promise<void> {
    const { file, meta: metaFile } = this.folders.paths(bucket, key);
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
      const meta = await this.folders.metaFor(file, metaFile, st);
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
    await this.folders.removeObject(bucket, key);
    res.writeHead(204);
    res.end();
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
        await this.folders.removeObject(bucket, key);
        if (!quiet) out += `<Deleted>${el('Key', key)}</Deleted>`;
      } catch (err) {
        const e = err instanceof S3Error ? err : new S3Error(500, 'InternalError', 'Internal error');
        out += `<Error>${el('Key', key)}${el('Code', e.code)}${el('Message', e.message)}</Error>`;
      }
    }
    sendXml(res, 200, `<DeleteResult xmlns="${S3_NS}">${out}</DeleteResult>`);
  }
}
