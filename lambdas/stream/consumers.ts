/**
 * What reacts to changes in the main table, each area in its own module. The stream router runs
 * every consumer on every record, in order per item; a consumer that throws fails the record, so
 * the stream retries it (and every consumer sees it again): consumers must be idempotent.
 * Add a consumer by writing `lambdas/<area>/stream.ts` exporting a `StreamConsumer`, listing it
 * here, and granting the stream router what it uses (`grants['stream-router']` in the area's
 * topology fragment).
 */
import type { DynamoDBRecord } from 'aws-lambda';
import { pingConsumer } from '../ping/stream.ts';
import { ledgerConsumer } from '../ledger/stream.ts';
import { merchantEventsConsumer } from '../events/stream.ts';

export interface StreamChange {
  eventName: 'INSERT' | 'MODIFY' | 'REMOVE';
  /** Unmarshalled images. */
  oldImage?: Record<string, unknown>;
  newImage?: Record<string, unknown>;
  /** The stream record's sequence number (unique per table), for deterministic ids. */
  sequenceNumber: string;
  record: DynamoDBRecord;
}

export interface StreamConsumer {
  name: string;
  handle(change: StreamChange): Promise<void>;
}

export const consumers: StreamConsumer[] = [pingConsumer, merchantEventsConsumer, ledgerConsumer];
