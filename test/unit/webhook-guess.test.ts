/**
 * A passively settled webhook event is written on a guess of its payment (lambdas/webhooks/facts.ts
 * `settleByGuess`): the guess may be wrong, the outcome never is. Property: on random payment states
 * (every status, processor and reference matching or not or absent, a pending modification, a task
 * token) and random sequences of facts (so that the guesses the receiver makes vary, right and
 * wrong), `settlePassively` ends in exactly what the read-then-write path it replaces ends in —
 * `passiveFact` from a read of the payment, then `recordWebhookEntries` — for twin payments: the
 * same outcome, the same timeline entries, the same `webhook_events`; and a redelivered event
 * changes nothing on either.
 */
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { jest } from '@jest/globals';
import type { PaymentEvent, PaymentFact } from '../../lambdas/connectors/facts.ts';
import { TRANSITIONS, type PaymentStatus } from '../../lambdas/domain/payment.ts';
import { clients } from '../../lambdas/shared/aws.ts';
import {
  annotate,
  createPayment,
  recordWebhookEntries,
  webhookEventKey,
} from '../../lambdas/store/payments.ts';
import { passiveFact, settlePassively } from '../../lambdas/webhooks/facts.ts';
import type { EventInfo } from '../../lambdas/webhooks/payments.ts';
import { paymentItem } from '../fixtures/payments.ts';
import { startLocalTable, type LocalTable } from './store-local-table.ts';

let t: LocalTable;
beforeAll(async () => {
  t = await startLocalTable();
});
afterAll(async () => t?.stop());

/** A seeded generator (mulberry32): the same cases on every run. */
function random(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const STATUSES = Object.keys(TRANSITIONS) as PaymentStatus[];
const EVENTS: PaymentEvent[] = [
  'authorised',
  'refused',
  'pending',
  'captured',
  'canceled',
  'expired',
  'authorisation_adjusted',
];

/** The path `settlePassively` had before the guess: read, decide, write once per event. */
async function readThenWrite(fact: PaymentFact, event: EventInfo) {
  const plan = await passiveFact(fact, event);
  if (!plan) return undefined;
  if (!plan.entry) return plan.outcome;
  const r = await recordWebhookEntries(plan.paymentId, webhookEventKey(fact.processor, event.id), [
    plan.entry,
  ]);
  return r === 'changed' || r === 'missing' ? undefined : plan.outcome;
}

const item = async (id: string) =>
  (
    await clients.ddb().send(
      new GetCommand({
        TableName: t.name,
        Key: { pk: `PAYMENT#${id}`, sk: 'PAYMENT' },
        ConsistentRead: true,
      }),
    )
  ).Item!;

/** What the events left on the payment, comparable between twins. */
const webhookTrace = (it: Record<string, unknown>) => ({
  entries: ((it.timeline as Record<string, unknown>[] | undefined) ?? [])
    .filter((e) => e.type === 'webhook')
    .map(({ k: _k, at: _at, ...rest }) => rest),
  events: [...((it.webhook_events as Set<string> | undefined) ?? [])].sort(),
});

test('settled on a guess or not, an event ends exactly as the read-then-write path would end it', async () => {
  const rnd = random(11);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const writes = jest.spyOn(clients.ddb(), 'send');
  let guessedRight = 0;
  let guessedWrong = 0;
  for (let c = 0; c < 40; c++) {
    // Every status, the ones events usually meet more often.
    const status = pick([
      ...STATUSES,
      'processing',
      'authorized',
      'authorized',
      'captured',
      'captured',
    ] as const);
    // Mostly the fact's own processor payment (where guesses can hold), often not.
    const processor = pick(['stripe', 'stripe', 'stripe', 'adyen', null]);
    const reference = pick(['pi_mine', 'pi_mine', 'pi_mine', 'pi_other', null]);
    const pending =
      rnd() < 0.3 ? { action: 'capture', amount: 500, requested: 1, state: 'pending' } : undefined;
    const token = pick([undefined, undefined, undefined, 'authentication', 'capture']);
    const ids = ['a', 'b'].map((s) => `pay_guess${String(c).padStart(4, '0')}${s}xxxxxx`);
    for (const id of ids) {
      await createPayment(
        paymentItem({ id, merchant_id: 'mch_guess', status, processor, processor_reference: reference }),
      );
      if (pending || token)
        await annotate(id, {
          ...(pending ? { pending_modification: pending } : {}),
          ...(token ? { task_token: `tok_${c}`, task_token_kind: token } : {}),
        });
    }
    // A few events in a row, some delivered twice: the guesses follow what the earlier ones found.
    for (let e = 0; e < 3; e++) {
      const ev = pick(EVENTS);
      const event: EventInfo = { id: `evt_${c}_${e}`, type: `payment.${ev}`, created: 1 };
      const fact = (paymentId: string): PaymentFact => ({
        kind: 'payment',
        processor: 'stripe',
        id: `stripe:evt_${c}_${e}`,
        at: new Date().toISOString(),
        raw_event: `payment.${ev}`,
        success: true,
        amount: null,
        live: false,
        reference: 'pi_mine',
        merchantReference: paymentId,
        event: ev,
      });
      for (let delivery = 0; delivery < (rnd() < 0.3 ? 2 : 1); delivery++) {
        writes.mockClear();
        const guessed = await settlePassively([fact(ids[0]!)], event);
        const updates = writes.mock.calls.filter(([cmd]) => cmd instanceof UpdateCommand).length;
        const reads = writes.mock.calls.filter(([cmd]) => cmd instanceof GetCommand).length;
        if (guessed === 'recorded' && updates === 1 && delivery === 0) {
          expect(reads).toBe(0); // decided and written with no read of the payment
          guessedRight++;
        }
        if (updates === 2) guessedWrong++;
        const reference = await readThenWrite(fact(ids[1]!), event);
        expect({ case: c, event: e, outcome: guessed }).toEqual({ case: c, event: e, outcome: reference });
      }
    }
    const [a, b] = await Promise.all(ids.map(item));
    expect(webhookTrace(a!)).toEqual(webhookTrace(b!));
  }
  writes.mockRestore();
  // Both paths of the guess were taken (the property says nothing otherwise).
  expect(guessedRight).toBeGreaterThan(15);
  expect(guessedWrong).toBeGreaterThan(15);
}, 120_000);
