/**
 * The SQS wire format of the local queues (lib/local/queues.ts): the message as SQS describes it,
 * SQS's error types and codes, MD5 digests of bodies and attributes, the request validation SQS
 * applies (body size and characters, message attributes, integer parameters, batch entries), the
 * attribute names a receive may ask for, and the record a Lambda SQS event carries.
 */
import { createHash } from 'node:crypto';

export const LOCAL_ACCOUNT_ID = '000000000000';
export const LOCAL_REGION = 'local';

export interface MessageAttributeValue {
  DataType: string;
  StringValue?: string;
  /** Base64, as on the wire. */
  BinaryValue?: string;
}

/** A message as a queue holds it. */
export interface Message {
  id: string;
  body: string;
  md5: string;
  attrs?: Record<string, MessageAttributeValue>;
  sentAt: number;
  receiveCount: number;
  firstReceiveAt?: number;
  visibleAt: number;
  receipt?: string;
  /** ARN of the queue the message was dead-lettered from. */
  dlqSource?: string;
}

export class SqsError extends Error {
  readonly type: string;
  readonly queryCode: string;
  readonly status: number;
  constructor(type: string, message: string, queryCode = type, status = 400) {
    super(message);
    this.name = 'SqsError';
    this.type = type;
    this.queryCode = queryCode;
    this.status = status;
  }
}

export const queueDoesNotExist = () =>
  new SqsError(
    'QueueDoesNotExist',
    'The specified queue does not exist.',
    'AWS.SimpleQueueService.NonExistentQueue',
    400,
  );
export const invalidParameter = (message: string) => new SqsError('InvalidParameterValue', message);
export const missingParameter = (name: string) =>
  new SqsError('MissingParameter', `The request must contain the parameter ${name}.`);
export const receiptInvalid = (handle: string) =>
  new SqsError(
    'ReceiptHandleIsInvalid',
    `The input receipt handle "${handle}" is not a valid receipt handle.`,
    'ReceiptHandleIsInvalid',
    404,
  );

export const md5Hex = (data: string | Buffer) => createHash('md5').update(data).digest('hex');

/** MD5 of message attributes as SQS computes it (names sorted; length-prefixed name, type, value). */
export function md5OfMessageAttributes(attrs: Record<string, MessageAttributeValue>): string {
  const parts: Buffer[] = [];
  const lengthPrefixed = (b: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    parts.push(len, b);
  };
  for (const name of Object.keys(attrs).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))) {
    const a = attrs[name]!;
    lengthPrefixed(Buffer.from(name, 'utf8'));
    lengthPrefixed(Buffer.from(a.DataType, 'utf8'));
    if (a.BinaryValue !== undefined && a.StringValue === undefined) {
      parts.push(Buffer.from([2]));
      lengthPrefixed(Buffer.from(a.BinaryValue, 'base64'));
    } else {
      parts.push(Buffer.from([1]));
      lengthPrefixed(Buffer.from(a.StringValue ?? '', 'utf8'));
    }
  }
  return md5Hex(Buffer.concat(parts));
}

// Characters SQS allows in a message body.
// eslint-disable-next-line no-control-regex
const INVALID_BODY_CHARS = /[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;
export const MAX_MESSAGE_BYTES = 1024 * 1024;
const BATCH_ID = /^[A-Za-z0-9_-]{1,80}$/;
const SYSTEM_ATTRIBUTES = [
  'ApproximateReceiveCount',
  'ApproximateFirstReceiveTimestamp',
  'SentTimestamp',
  'SenderId',
  'DeadLetterQueueSourceArn',
];

export const KNOWN_QUEUE_ATTRIBUTES = new Set([
  'ApproximateNumberOfMessages',
  'ApproximateNumberOfMessagesNotVisible',
  'ApproximateNumberOfMessagesDelayed',
  'VisibilityTimeout',
  'QueueArn',
  'DelaySeconds',
  'ReceiveMessageWaitTimeSeconds',
  'MaximumMessageSize',
  'MessageRetentionPeriod',
  'RedrivePolicy',
  'Policy',
  'CreatedTimestamp',
  'LastModifiedTimestamp',
  'KmsMasterKeyId',
  'KmsDataKeyReusePeriodSeconds',
  'SqsManagedSseEnabled',
  'RedriveAllowPolicy',
  'FifoQueue',
  'ContentBasedDeduplication',
  'DeduplicationScope',
  'FifoThroughputLimit',
]);

export function validateBody(body: string): void {
  if (body === '') throw missingParameter('MessageBody');
  if (Buffer.byteLength(body, 'utf8') > MAX_MESSAGE_BYTES) {
    throw invalidParameter(
      `One or more parameters are invalid. Reason: Message must be shorter than ${MAX_MESSAGE_BYTES} bytes.`,
    );
  }
  if (INVALID_BODY_CHARS.test(body)) {
    throw new SqsError('InvalidMessageContents', 'Invalid characters found in the message body.');
  }
}

export function validateAttributes(attrs: Record<string, MessageAttributeValue>): void {
  const names = Object.keys(attrs);
  if (names.length > 10)
    throw invalidParameter(
      'Number of message attributes [' + names.length + '] exceeds the allowed maximum [10].',
    );
  for (const name of names) {
    const a = attrs[name];
    if (!a || typeof a.DataType !== 'string' || !/^(String|Number|Binary)(\..+)?$/.test(a.DataType)) {
      throw invalidParameter(`The message attribute '${name}' has an invalid message attribute type.`);
    }
    const binary = a.DataType.startsWith('Binary');
    if (binary ? typeof a.BinaryValue !== 'string' : typeof a.StringValue !== 'string') {
      throw invalidParameter(
        `The message attribute '${name}' must contain a non-empty message attribute value.`,
      );
    }
  }
}

export function intParam(
  value: unknown,
  name: string,
  min: number,
  max: number,
  required = false,
): number | undefined {
  if (value === undefined || value === null) {
    if (required) throw missingParameter(name);
    return undefined;
  }
  const n = typeof value === 'string' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw invalidParameter(
      `Value ${String(value)} for parameter ${name} is invalid. Reason: must be between ${min} and ${max}.`,
    );
  }
  return n;
}

export function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

export function batchEntries(value: unknown): Record<string, unknown>[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new SqsError(
      'EmptyBatchRequest',
      'There should be at least one SendMessageBatchRequestEntry in the request.',
      'AWS.SimpleQueueService.EmptyBatchRequest',
    );
  }
  if (value.length > 10) {
    throw new SqsError(
      'TooManyEntriesInBatchRequest',
      `Maximum number of entries per request are 10. You have sent ${value.length}.`,
      'AWS.SimpleQueueService.TooManyEntriesInBatchRequest',
    );
  }
  const seen = new Set<string>();
  for (const e of value as Record<string, unknown>[]) {
    const id = e?.Id;
    if (typeof id !== 'string' || !BATCH_ID.test(id)) {
      throw new SqsError(
        'InvalidBatchEntryId',
        'A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.',
        'AWS.SimpleQueueService.InvalidBatchEntryId',
      );
    }
    if (seen.has(id)) {
      throw new SqsError(
        'BatchEntryIdsNotDistinct',
        `Id ${id} repeated.`,
        'AWS.SimpleQueueService.BatchEntryIdsNotDistinct',
      );
    }
    seen.add(id);
  }
  return value as Record<string, unknown>[];
}

export function selectSystemAttributes(m: Message, names: string[]): Record<string, string> | undefined {
  if (names.length === 0) return undefined;
  const all: Record<string, string> = {
    ApproximateReceiveCount: String(m.receiveCount),
    ApproximateFirstReceiveTimestamp: String(m.firstReceiveAt ?? m.sentAt),
    SentTimestamp: String(m.sentAt),
    SenderId: LOCAL_ACCOUNT_ID,
    ...(m.dlqSource ? { DeadLetterQueueSourceArn: m.dlqSource } : {}),
  };
  const wantAll = names.includes('All');
  const out: Record<string, string> = {};
  for (const n of SYSTEM_ATTRIBUTES)
    if ((wantAll || names.includes(n)) && all[n] !== undefined) out[n] = all[n];
  return Object.keys(out).length > 0 ? out : undefined;
}

export function selectMessageAttributes(
  attrs: Record<string, MessageAttributeValue> | undefined,
  names: string[],
): Record<string, MessageAttributeValue> | undefined {
  if (!attrs || names.length === 0) return undefined;
  const out: Record<string, MessageAttributeValue> = {};
  for (const [name, value] of Object.entries(attrs)) {
    const wanted = names.some(
      (n) => n === 'All' || n === '.*' || n === name || (n.endsWith('.*') && name.startsWith(n.slice(0, -1))),
    );
    if (wanted) out[name] = value;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** The record of one message in the SQS event a consumer function receives. */
export function sqsEventRecord(queueArn: string, m: Message) {
  const messageAttributes: Record<string, unknown> = {};
  for (const [name, a] of Object.entries(m.attrs ?? {})) {
    messageAttributes[name] = {
      ...(a.StringValue !== undefined ? { stringValue: a.StringValue } : {}),
      ...(a.BinaryValue !== undefined ? { binaryValue: a.BinaryValue } : {}),
      stringListValues: [],
      binaryListValues: [],
      dataType: a.DataType,
    };
  }
  return {
    messageId: m.id,
    receiptHandle: m.receipt!,
    body: m.body,
    attributes: {
      ApproximateReceiveCount: String(m.receiveCount),
      SentTimestamp: String(m.sentAt),
      SenderId: LOCAL_ACCOUNT_ID,
      ApproximateFirstReceiveTimestamp: String(m.firstReceiveAt ?? m.sentAt),
      ...(m.dlqSource ? { DeadLetterQueueSourceArn: m.dlqSource } : {}),
    },
    messageAttributes,
    md5OfBody: m.md5,
    ...(m.attrs ? { md5OfMessageAttributes: md5OfMessageAttributes(m.attrs) } : {}),
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: LOCAL_REGION,
  };
}
