/**
 * Verified processor facts (lambdas/connectors/facts.ts) kept for a processor that has no API to
 * read a payment (Adyen): its connector answers `retrieve` / `retrieveRefund` from them. Table
 * `main`:
 *
 *   pk FACTS#<processor>#<reference>  sk FACT#<fact id>   the fact (kind 'processor_fact'), stored
 *       under its own reference and, for a refund or dispute fact, under its payment's reference
 *       too, so one query gives a payment's facts with its refunds' and disputes'
 *   pk PSPREF#<processor>#<reference>  sk PSPREF          the paystep payment behind a processor
 *       reference (kind 'processor_reference'), written when the processor answers `authorize`
 *
 * Each fact is written once (a conditional put on its id: a redelivered notification changes
 * nothing). The raw notification is kept by the webhook event store (lambdas/store/webhook-events.ts).
 */
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import type { ConnectorFact } from '../connectors/facts.ts';
import { clients } from '../shared/aws.ts';
import { config } from '../shared/config.ts';
import { putIfAbsent } from './conditional.ts';
import { queryAll } from './pages.ts';

/** As long as the processor may still send a late fact about the payment (Adyen: chargebacks). */
const FACT_TTL_DAYS = 400;

const table = () => config.tableName('main');
const factsKey = (processor: string, reference: string) => `FACTS#${processor}#${reference}`;
const refKey = (processor: string, reference: string) => ({
  pk: `PSPREF#${processor}#${reference}`,
  sk: 'PSPREF',
});
const expiry = () => Math.floor(Date.now() / 1000) + FACT_TTL_DAYS * 86400;

/**
 * Stores a verified fact once. True when this call stored it (false: already stored). A dispute
 * fact's `dispute` (the processor's whole dispute as its event saw it, evidence text included: up
 * to 150,000 characters at Stripe) is not stored: it is read again from the stored event when the
 * event is processed, and an item must stay within DynamoDB's 400 KB.
 */
export async function storeFact(input: ConnectorFact): Promise<boolean> {
  let fact = input;
  if (fact.kind === 'dispute' && fact.dispute) {
    const { dispute: _snapshot, ...rest } = fact;
    fact = rest;
  }
  const refs = new Set([fact.reference]);
  if (fact.kind !== 'payment') refs.add(fact.paymentReference);
  let created = false;
  for (const ref of refs)
    created =
      (await putIfAbsent(table(), {
        pk: factsKey(fact.processor, ref),
        sk: `FACT#${fact.id}`,
        kind: 'processor_fact',
        fact,
        expires_at: expiry(),
      })) || created;
  return created;
}

/** The facts stored under a reference (its own, and its refunds' and disputes' for a payment). */
export async function listFacts(processor: string, reference: string): Promise<ConnectorFact[]> {
  const items = await queryAll({
    TableName: table(),
    KeyConditionExpression: 'pk = :pk AND begins_with(sk, :f)',
    ExpressionAttributeValues: { ':pk': factsKey(processor, reference), ':f': 'FACT#' },
    ConsistentRead: true,
  });
  return items.map((i) => i.fact as ConnectorFact);
}

/** Records which paystep payment a processor reference belongs to (idempotent). */
export async function rememberReference(
  processor: string,
  reference: string,
  paymentId: string,
): Promise<void> {
  await putIfAbsent(table(), {
    ...refKey(processor, reference),
    kind: 'processor_reference',
    payment_id: paymentId,
    expires_at: expiry(),
  });
}

/** The paystep payment id behind a processor reference, if paystep has seen it. */
export async function paymentIdForReference(
  processor: string,
  reference: string,
): Promise<string | undefined> {
  const out = await clients
    .ddb()
    .send(new GetCommand({ TableName: table(), Key: refKey(processor, reference), ConsistentRead: true }));
  const id = out.Item?.payment_id;
  return typeof id === 'string' ? id : undefined;
}
