/**
 * The SQS-compatible endpoint of the local queues (lib/local/queues.ts): the AWS JSON 1.0 protocol
 * (`X-Amz-Target: AmazonSQS.<Operation>`, what the installed `@aws-sdk/client-sqs` speaks), the
 * permission check of each request, and each operation's dispatch onto the queues (send and its
 * batch, long-polled receive, delete, change visibility, queue attributes, purge). Queue URLs are
 * `${endpoint}/000000000000/<name>`; the last path segment names the queue, whatever the host.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from './log.ts';
import { sqsAccesses, type LocalPermissions } from './permissions.ts';
import type { Queue, QueueStats } from './queues.ts';
import {
  KNOWN_QUEUE_ATTRIBUTES,
  LOCAL_ACCOUNT_ID,
  LOCAL_REGION,
  MAX_MESSAGE_BYTES,
  SqsError,
  batchEntries,
  intParam,
  invalidParameter,
  md5OfMessageAttributes,
  missingParameter,
  queueDoesNotExist,
  selectMessageAttributes,
  selectSystemAttributes,
  stringList,
  type Message,
  type MessageAttributeValue,
} from './queues-wire.ts';

/** What the endpoint needs from the queues (LocalQueues keeps these private and hands them over). */
export interface SqsBackend {
  queues: ReadonlyMap<string, Queue>;
  /** True once stop() began: receives then return nothing. */
  stopping(): boolean;
  queueUrl(name: string): string;
  stats(name: string): QueueStats;
  send(q: Queue, body: string, delaySeconds: number, attrs?: Record<string, MessageAttributeValue>): Message;
  receive(q: Queue, max: number, visibilityMs: number): Message[];
  deleteByReceipt(q: Queue, handle: unknown): void;
  changeVisibility(q: Queue, handle: unknown, seconds: unknown): void;
  purge(q: Queue): void;
  /** Wakes long polls and the consumer of a queue. */
  wake(q: Queue): void;
  /** Scaled real milliseconds for a duration in seconds. */
  ms(seconds: number): number;
}

export class SqsApi {
  private readonly backend: SqsBackend;
  private readonly log: Logger;
  private readonly permissions?: LocalPermissions;

  constructor(backend: SqsBackend, log: Logger, permissions?: LocalPermissions) {
    this.backend = backend;
    this.log = log;
    this.permissions = permissions;
  }

  /** Answers one request (errors are thrown: the caller answers them with `fail`). */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = String(req.headers['x-amz-target'] ?? '');
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req as AsyncIterable<Buffer>) {
      size += c.length;
      if (size > 16 * MAX_MESSAGE_BYTES) throw invalidParameter('Request too large.');
      chunks.push(c);
    }
    if (req.method !== 'POST' || !target.startsWith('AmazonSQS.')) {
      throw new SqsError(
        'UnsupportedOperation',
        'Only the AWS JSON 1.0 protocol (X-Amz-Target) is supported.',
      );
    }
    let input: Record<string, unknown>;
    try {
      const text = Buffer.concat(chunks).toString('utf8');
      input = (text ? JSON.parse(text) : {}) as Record<string, unknown>;
      if (!input || typeof input !== 'object' || Array.isArray(input)) throw new Error('not an object');
    } catch {
      throw new SqsError('SerializationException', 'The request body is not valid JSON.');
    }
    const op = target.slice('AmazonSQS.'.length);
    this.log.debug({ op }, 'sqs request');
    const denial = this.permissions?.check(req, () =>
      sqsAccesses(op, input, (name) => `arn:aws:sqs:${LOCAL_REGION}:${LOCAL_ACCOUNT_ID}:${name}`),
    );
    if (denial) throw new SqsError('AccessDeniedException', denial, 'AccessDenied', 403);
    const ac = new AbortController();
    res.on('close', () => ac.abort());
    const output = await this.dispatch(op, input, ac.signal);
    const body = Buffer.from(JSON.stringify(output), 'utf8');
    res.writeHead(200, {
      'content-type': 'application/x-amz-json-1.0',
      'content-length': body.length,
      'x-amzn-requestid': randomUUID(),
    });
    res.end(body);
  }

  /** Answers a request that failed with SQS's error body and headers (a 500 for an unexpected error). */
  fail(res: ServerResponse, err: unknown): void {
    const e =
      err instanceof SqsError
        ? err
        : new SqsError('InternalError', 'We encountered an internal error.', 'InternalError', 500);
    if (!(err instanceof SqsError)) this.log.error({ err }, 'sqs request failed');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body = Buffer.from(
      JSON.stringify({ __type: `com.amazonaws.sqs#${e.type}`, message: e.message }),
      'utf8',
    );
    res.writeHead(e.status, {
      'content-type': 'application/x-amz-json-1.0',
      'content-length': body.length,
      'x-amzn-requestid': randomUUID(),
      'x-amzn-query-error': `${e.queryCode};${e.status >= 500 ? 'Receiver' : 'Sender'}`,
    });
    res.end(body);
  }

  private queueFromUrl(url: unknown): Queue {
    if (typeof url !== 'string' || !url) throw missingParameter('QueueUrl');
    let name: string | undefined;
    try {
      name = new URL(url).pathname.split('/').filter(Boolean).pop();
    } catch {
      throw queueDoesNotExist();
    }
    const q = name ? this.backend.queues.get(decodeURIComponent(name)) : undefined;
    if (!q) throw queueDoesNotExist();
    return q;
  }

  private async dispatch(op: string, input: Record<string, unknown>, signal: AbortSignal): Promise<unknown> {
    // While stopping, sends and deletes are still accepted (batches in flight finish); receives get nothing.
    switch (op) {
      case 'GetQueueUrl': {
        const name = input.QueueName;
        if (typeof name !== 'string' || !name) throw missingParameter('QueueName');
        if (!this.backend.queues.has(name)) throw queueDoesNotExist();
        return { QueueUrl: this.backend.queueUrl(name) };
      }
      case 'ListQueues': {
        const prefix = typeof input.QueueNamePrefix === 'string' ? input.QueueNamePrefix : '';
        return {
          QueueUrls: [...this.backend.queues.keys()]
            .filter((n) => n.startsWith(prefix))
            .map((n) => this.backend.queueUrl(n)),
        };
      }
      case 'SendMessage': {
        const q = this.queueFromUrl(input.QueueUrl);
        const m = this.sendFromInput(q, input);
        return {
          MessageId: m.id,
          MD5OfMessageBody: m.md5,
          ...(m.attrs ? { MD5OfMessageAttributes: md5OfMessageAttributes(m.attrs) } : {}),
        };
      }
      case 'SendMessageBatch': {
        const q = this.queueFromUrl(input.QueueUrl);
        const entries = batchEntries(input.Entries);
        const size = entries.reduce((n, e) => n + Buffer.byteLength(String(e.MessageBody ?? ''), 'utf8'), 0);
        if (size > MAX_MESSAGE_BYTES) {
          throw new SqsError(
            'BatchRequestTooLong',
            'Batch requests cannot be longer than 1048576 bytes.',
            'AWS.SimpleQueueService.BatchRequestTooLong',
          );
        }
        const Successful: unknown[] = [];
        const Failed: unknown[] = [];
        for (const e of entries) {
          try {
            const m = this.sendFromInput(q, e);
            Successful.push({
              Id: e.Id,
              MessageId: m.id,
              MD5OfMessageBody: m.md5,
              ...(m.attrs ? { MD5OfMessageAttributes: md5OfMessageAttributes(m.attrs) } : {}),
            });
          } catch (err) {
            if (!(err instanceof SqsError)) throw err;
            Failed.push({ Id: e.Id, SenderFault: true, Code: err.type, Message: err.message });
          }
        }
        return { Successful, Failed };
      }
      case 'ReceiveMessage':
        return this.receiveFromInput(input, signal);
      case 'DeleteMessage': {
        const q = this.queueFromUrl(input.QueueUrl);
        this.backend.deleteByReceipt(q, input.ReceiptHandle);
        return {};
      }
      case 'DeleteMessageBatch': {
        const q = this.queueFromUrl(input.QueueUrl);
        const Successful: unknown[] = [];
        const Failed: unknown[] = [];
        for (const e of batchEntries(input.Entries)) {
          try {
            this.backend.deleteByReceipt(q, e.ReceiptHandle);
            Successful.push({ Id: e.Id });
          } catch (err) {
            if (!(err instanceof SqsError)) throw err;
            Failed.push({ Id: e.Id, SenderFault: true, Code: err.type, Message: err.message });
          }
        }
        return { Successful, Failed };
      }
      case 'ChangeMessageVisibility': {
        const q = this.queueFromUrl(input.QueueUrl);
        this.backend.changeVisibility(q, input.ReceiptHandle, input.VisibilityTimeout);
        return {};
      }
      case 'ChangeMessageVisibilityBatch': {
        const q = this.queueFromUrl(input.QueueUrl);
        const Successful: unknown[] = [];
        const Failed: unknown[] = [];
        for (const e of batchEntries(input.Entries)) {
          try {
            this.backend.changeVisibility(q, e.ReceiptHandle, e.VisibilityTimeout);
            Successful.push({ Id: e.Id });
          } catch (err) {
            if (!(err instanceof SqsError)) throw err;
            Failed.push({ Id: e.Id, SenderFault: true, Code: err.type, Message: err.message });
          }
        }
        return { Successful, Failed };
      }
      case 'GetQueueAttributes':
        return { Attributes: this.attributes(this.queueFromUrl(input.QueueUrl), input.AttributeNames) };
      case 'PurgeQueue':
        this.backend.purge(this.queueFromUrl(input.QueueUrl));
        return {};
      default:
        throw new SqsError('UnsupportedOperation', `Operation ${op} is not supported by the local queues.`);
    }
  }

  private sendFromInput(q: Queue, input: Record<string, unknown>): Message {
    const body = input.MessageBody;
    if (typeof body !== 'string' || body === '') throw missingParameter('MessageBody');
    const delay = intParam(input.DelaySeconds, 'DelaySeconds', 0, 900) ?? 0;
    const attrs = input.MessageAttributes as Record<string, MessageAttributeValue> | undefined;
    return this.backend.send(q, body, delay, attrs && typeof attrs === 'object' ? attrs : undefined);
  }

  private async receiveFromInput(input: Record<string, unknown>, signal: AbortSignal): Promise<unknown> {
    const q = this.queueFromUrl(input.QueueUrl);
    const max = intParam(input.MaxNumberOfMessages, 'MaxNumberOfMessages', 1, 10) ?? 1;
    const visibility =
      intParam(input.VisibilityTimeout, 'VisibilityTimeout', 0, 43200) ?? q.def.visibilityTimeoutSeconds;
    const wait = intParam(input.WaitTimeSeconds, 'WaitTimeSeconds', 0, 20) ?? 0;
    const systemNames = [
      ...stringList(input.AttributeNames),
      ...stringList(input.MessageSystemAttributeNames),
    ];
    const attrNames = stringList(input.MessageAttributeNames);
    const deadline = Date.now() + wait * 1000;
    let messages: Message[] = [];
    for (;;) {
      if (this.backend.stopping() || signal.aborted) break;
      messages = this.backend.receive(q, max, this.backend.ms(visibility));
      const left = deadline - Date.now();
      if (messages.length > 0 || left <= 0) break;
      await this.waitForMessages(q, left, signal);
    }
    if (signal.aborted && messages.length > 0) {
      // The caller went away: make what it would have received visible again at once.
      for (const m of messages) m.visibleAt = Date.now();
      this.backend.wake(q);
      return { Messages: [] };
    }
    return {
      Messages: messages.map((m) => {
        const system = selectSystemAttributes(m, systemNames);
        const attrs = selectMessageAttributes(m.attrs, attrNames);
        return {
          MessageId: m.id,
          ReceiptHandle: m.receipt,
          MD5OfBody: m.md5,
          Body: m.body,
          ...(system ? { Attributes: system } : {}),
          ...(attrs
            ? { MessageAttributes: attrs, MD5OfMessageAttributes: md5OfMessageAttributes(attrs) }
            : {}),
        };
      }),
    };
  }

  private attributes(q: Queue, names: unknown): Record<string, string> {
    const stats = this.backend.stats(q.name);
    const all: Record<string, string> = {
      ApproximateNumberOfMessages: String(stats.visible),
      ApproximateNumberOfMessagesNotVisible: String(stats.inFlight),
      ApproximateNumberOfMessagesDelayed: String(stats.delayed),
      VisibilityTimeout: String(q.def.visibilityTimeoutSeconds),
      QueueArn: q.arn,
      DelaySeconds: '0',
      ReceiveMessageWaitTimeSeconds: '0',
      MaximumMessageSize: String(MAX_MESSAGE_BYTES),
      MessageRetentionPeriod: '345600',
      ...(q.def.dlq
        ? {
            RedrivePolicy: JSON.stringify({
              deadLetterTargetArn: this.backend.queues.get(q.def.dlq)!.arn,
              maxReceiveCount: q.def.maxReceiveCount,
            }),
          }
        : {}),
    };
    const wanted = stringList(names);
    if (wanted.includes('All')) return all;
    const out: Record<string, string> = {};
    for (const n of wanted) {
      if (all[n] !== undefined) out[n] = all[n];
      else if (!KNOWN_QUEUE_ATTRIBUTES.has(n))
        throw new SqsError('InvalidAttributeName', `Unknown Attribute ${n}.`);
    }
    return out;
  }

  private waitForMessages(q: Queue, ms: number, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        q.waiters.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      q.waiters.add(done);
      signal.addEventListener('abort', done);
    });
  }
}
