/**
 * Objects in the platform's buckets, streamed: large reports are written to a temporary file
 * (Lambda: /tmp) in constant memory, then uploaded with their length; large inputs are read as
 * streams. Bucket names are topology names (`reports`, `settlements`).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';

/** A file written in constant memory: text is buffered in 256 KB blocks, with backpressure. */
export class TempFile {
  readonly path: string;
  private readonly out: fs.WriteStream;
  private readonly hash = createHash('sha256');
  private buf: string[] = [];
  private bufLen = 0;
  bytes = 0;
  lines = 0;

  constructor(prefix = 'paystep') {
    this.path = path.join(os.tmpdir(), `${prefix}-${process.pid}-${Math.random().toString(36).slice(2)}.tmp`);
    this.out = fs.createWriteStream(this.path);
  }

  /** Appends text; resolves at once unless the disk is behind. */
  async write(text: string): Promise<void> {
    this.buf.push(text);
    this.bufLen += text.length;
    this.lines++;
    if (this.bufLen >= 1 << 18) await this.flush();
  }

  private async flush(): Promise<void> {
    if (!this.bufLen) return;
    const chunk = Buffer.from(this.buf.join(''), 'utf8');
    this.buf = [];
    this.bufLen = 0;
    this.hash.update(chunk);
    this.bytes += chunk.length;
    if (!this.out.write(chunk)) await new Promise<void>((r) => this.out.once('drain', () => r()));
  }

  /** Flushes and closes; returns the file's size and SHA-256. */
  async close(): Promise<{ path: string; bytes: number; sha256: string }> {
    await this.flush();
    await new Promise<void>((resolve, reject) =>
      this.out.end((err?: Error | null) => (err ? reject(err) : resolve())),
    );
    return { path: this.path, bytes: this.bytes, sha256: this.hash.digest('hex') };
  }

  /** Removes the file, also when its stream is still opening it (it would appear after a removal). */
  remove(): void {
    fs.rmSync(this.path, { force: true });
    if (!this.out.closed) {
      this.out.once('close', () => fs.rmSync(this.path, { force: true }));
      this.out.destroy();
    }
  }
}

export async function putFile(bucket: string, key: string, file: string, contentType: string): Promise<void> {
  const size = fs.statSync(file).size;
  await clients.s3().send(
    new PutObjectCommand({
      Bucket: config.bucketName(bucket),
      Key: key,
      Body: size ? fs.createReadStream(file) : '',
      ContentLength: size,
      ContentType: contentType,
    }),
  );
}

export async function putText(bucket: string, key: string, text: string, contentType: string): Promise<void> {
  await clients.s3().send(
    new PutObjectCommand({
      Bucket: config.bucketName(bucket),
      Key: key,
      Body: text,
      ContentType: contentType,
    }),
  );
}

export async function getStream(bucket: string, key: string): Promise<Readable> {
  const out = await clients.s3().send(new GetObjectCommand({ Bucket: config.bucketName(bucket), Key: key }));
  return out.Body as Readable;
}

/** The object's size in bytes (HeadObject; a missing object rejects as GetObject does). */
export async function objectSize(bucket: string, key: string): Promise<number> {
  const out = await clients.s3().send(new HeadObjectCommand({ Bucket: config.bucketName(bucket), Key: key }));
  return out.ContentLength ?? 0;
}

/**
 * A presigned GetObject URL for a browser to fetch the object itself, valid `expiresSeconds`, that
 * downloads as `filename` with `contentType`: how a file too large for a Lambda response (6 MB)
 * reaches a person. Signed with the caller's credentials (in Lambda: its role's session, so the URL
 * also ends when that session does).
 */
/**
 * `Content-Disposition` of a file downloaded as `filename`: an ASCII fallback name (other
 * characters as `_`) and the exact name in RFC 5987 form.
 */
export function attachmentDisposition(filename: string): string {
  const ascii = filename.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 150) || 'download';
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(filename)}`;
}

export function signedDownloadUrl(
  bucket: string,
  key: string,
  download: { filename: string; contentType: string; expiresSeconds: number },
): Promise<string> {
  return getSignedUrl(
    clients.s3(),
    new GetObjectCommand({
      Bucket: config.bucketName(bucket),
      Key: key,
      ResponseContentDisposition: attachmentDisposition(download.filename),
      ResponseContentType: download.contentType,
    }),
    { expiresIn: download.expiresSeconds },
  );
}

export async function getText(bucket: string, key: string): Promise<string> {
  const out = await clients.s3().send(new GetObjectCommand({ Bucket: config.bucketName(bucket), Key: key }));
  return out.Body!.transformToString('utf8');
}

export interface ObjectInfo {
  key: string;
  size: number;
  lastModified: string | null;
}

/** The objects under `prefix`, in key order (after `startAfter`, when given). */
export async function* listObjects(
  bucket: string,
  prefix: string,
  startAfter?: string,
): AsyncGenerator<ObjectInfo> {
  let token: string | undefined;
  do {
    const page = await clients.s3().send(
      new ListObjectsV2Command({
        Bucket: config.bucketName(bucket),
        Prefix: prefix,
        ContinuationToken: token,
        ...(startAfter && !token ? { StartAfter: startAfter } : {}),
      }),
    );
    for (const o of page.Contents ?? [])
      yield { key: o.Key!, size: o.Size ?? 0, lastModified: o.LastModified?.toISOString() ?? null };
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
}

export async function deleteObject(bucket: string, key: string): Promise<void> {
  await clients.s3().send(new DeleteObjectCommand({ Bucket: config.bucketName(bucket), Key: key }));
}

/** Lines of a (possibly large) text object, in batches. */
export async function* objectLines(bucket: string, key: string): AsyncGenerator<string[]> {
  const decoder = new TextDecoder('utf-8');
  let rest = '';
  for await (const chunk of await getStream(bucket, key)) {
    const text = rest + decoder.decode(chunk as Buffer, { stream: true });
    const parts = text.split('\n');
    rest = parts.pop()!;
    const lines = parts.filter(Boolean);
    if (lines.length) yield lines;
  }
  rest += decoder.decode();
  if (rest) yield [rest];
}
