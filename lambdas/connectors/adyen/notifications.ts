/**
 * Adyen's standard webhooks ("notifications") → verified, processor-neutral facts (../facts.ts).
 *
 * Adyen POSTs a batch `{"live": "false", "notificationItems": [{"NotificationRequestItem": {…}}]}`
 * and retries the whole batch until it gets a 2xx (Adyen expects the body `[accepted]`). Each item
 * is signed on its own: `additionalData.hmacSignature` = base64 HMAC-SHA256, keyed by the hex HMAC
 * key of the webhook configuration, over `pspReference:originalReference:merchantAccountCode:
 * merchantReference:value:currency:eventCode:success`. Verification uses the library's
 * `hmacValidator` (constant-time comparison).
 *
 * - Two keys are accepted while a key is rotated (the new one first): an item is verified if any
 *   configured key verifies it.
 * - An item that does not verify (no signature, wrong signature, malformed, or for a merchant
 *   account this connector does not serve) is rejected: it yields no fact. The batch answer is
 *   `[accepted]` only when every item verified; otherwise `response` is null and the route answers
 *   401, so Adyen retries the batch (a genuine batch signed with a key not configured yet is
 *   delivered again once it is) and a forged one changes nothing. Facts of the items that did
 *   verify are still returned: applying them is safe (stored once by `id`).
 * - Only the signed fields are authenticated; `additionalData` (refusal reasons, dispute status,
 *   card details) is not covered by Adyen's signature. Facts never take an amount, a reference or
 *   an event from it.
 * - Events paystep does not use (REPORT_AVAILABLE, RECURRING_CONTRACT, ORDER_OPENED, …) verify and
 *   are acknowledged with no fact.
 *
 * Modifications carry their own pspReference and the payment's as `originalReference`; dispute
 * events carry the dispute's pspReference (the same for every event of one dispute) and the
 * payment's as `originalReference`.
 */
import { hmacValidator } from '@adyen/api-library';
import type { Types } from '@adyen/api-library';
import { ProcessorRequestError } from '../../connectors/types.ts';
import type {
  ConnectorFact,
  DisputeEvent,
  DisputeFact,
  DisputeMoney,
  PaymentEvent,
  PaymentFact,
  RefundFact,
} from '../facts.ts';
import type { WebhookFormat, WebhookReceiver } from '../webhooks.ts';
import { fromAdyenAmount } from './amounts.ts';
import { cardFromAdditionalData, mapAdyenRefusal } from './declines.ts';

type NotificationRequestItem = Types.notification.NotificationRequestItem;

const NAME = 'adyen';
export const ACCEPTED = '[accepted]';

/** The body is not a notification batch (answer 400): a request paystep refuses, code `malformed`. */
export class AdyenNotificationError extends ProcessorRequestError {
  override name = 'AdyenNotificationError';
  constructor(message: string) {
    super(NAME, message, 'malformed');
  }
}

export interface AdyenNotificationOptions {
  /** HMAC keys (hex) of the webhook configuration; two while rotating, the new one first. */
  hmacKeys: readonly string[];
  /** Merchant accounts this connector serves; items for others are rejected. Unset: any. */
  merchantAccounts?: readonly string[];
}

export type Rejection = 'missing_signature' | 'bad_signature' | 'malformed' | 'merchant_account';

export interface ItemVerdict {
  index: number;
  verified: boolean;
  rejection?: Rejection;
  eventCode?: string;
  pspReference?: string;
  /** The fact the item states; null when it verified but is an event paystep does not use. */
  fact?: ConnectorFact | null;
}

export interface ParsedNotification {
  live: boolean;
  items: ItemVerdict[];
  /** Facts of the verified items, in batch order. */
  facts: ConnectorFact[];
  allVerified: boolean;
  /** `[accepted]` when every item verified (answer 200 with it); null: answer 401. */
  response: typeof ACCEPTED | null;
}

/** Checks HMAC keys once (hex, 32+ bytes) so a typo fails at start, not on the first webhook. */
export function checkHmacKeys(keys: readonly string[]): string[] {
  const out = keys.map((k) => k.trim()).filter(Boolean);
  if (!out.length || out.length > 2) throw new Error('Adyen: configure one HMAC key, or two while rotating');
  for (const k of out)
    if (!/^[0-9a-fA-F]+$/.test(k) || k.length % 2 !== 0 || k.length < 32)
      throw new Error('Adyen: an HMAC key must be the hex string shown in the Customer Area');
  return out;
}

const validator = new hmacValidator();

/** Whether an item's signature verifies with one of the keys. */
export function verifyItem(item: NotificationRequestItem, keys: readonly string[]): boolean {
  if (!item.additionalData?.hmacSignature) return false;
  for (const key of keys) {
    try {
      if (validator.validateHMAC(item, key)) return true;
    } catch {
      // A malformed item or key: this key does not verify it.
    }
  }
  return false;
}

function wellFormed(x: unknown): x is NotificationRequestItem {
  const i = x as Partial<NotificationRequestItem> | undefined;
  return (
    !!i &&
    typeof i.pspReference === 'string' &&
    !!i.pspReference &&
    typeof i.eventCode === 'string' &&
    (i.success === 'true' || i.success === 'false') &&
    !!i.amount &&
    typeof i.amount.currency === 'string' &&
    typeof i.amount.value === 'number' &&
    typeof i.merchantAccountCode === 'string' &&
    (i.additionalData === undefined || (typeof i.additionalData === 'object' && i.additionalData !== null))
  );
}

/** Parses and verifies a raw notification body. Throws AdyenNotificationError if it is not a batch. */
export function parseAdyenNotification(
  rawBody: string,
  options: AdyenNotificationOptions,
): ParsedNotification {
  let body: { live?: unknown; notificationItems?: unknown };
  try {
    body = JSON.parse(rawBody) as typeof body;
  } catch {
    throw new AdyenNotificationError('Adyen notification: the body is not JSON');
  }
  if (
    !body ||
    typeof body !== 'object' ||
    !Array.isArray(body.notificationItems) ||
    !body.notificationItems.length
  )
    throw new AdyenNotificationError('Adyen notification: no notificationItems');
  const live = body.live === 'true' || body.live === true;
  const keys = options.hmacKeys;
  const accounts = options.merchantAccounts?.length ? new Set(options.merchantAccounts) : undefined;
  const items: ItemVerdict[] = body.notificationItems.map((wrapper, index) => {
    const item = (wrapper as { NotificationRequestItem?: unknown } | null)?.NotificationRequestItem;
    if (!wellFormed(item)) return { index, verified: false, rejection: 'malformed' };
    const base = { index, eventCode: item.eventCode, pspReference: item.pspReference };
    if (!item.additionalData?.hmacSignature)
      return { ...base, verified: false, rejection: 'missing_signature' };
    if (!verifyItem(item, keys)) return { ...base, verified: false, rejection: 'bad_signature' };
    if (accounts && !accounts.has(item.merchantAccountCode))
      return { ...base, verified: false, rejection: 'merchant_account' };
    return { ...base, verified: true, fact: factOf(item, live) };
  });
  const allVerified = items.every((i) => i.verified);
  return {
    live,
    items,
    facts: items.flatMap((i) => (i.verified && i.fact ? [i.fact] : [])),
    allVerified,
    response: allVerified ? ACCEPTED : null,
  };
}

// --- One item → one fact ------------------------------------------------------------------------

const PAYMENT_EVENT: Readonly<Record<string, (ok: boolean) => PaymentEvent>> = {
  AUTHORISATION: (ok) => (ok ? 'authorised' : 'refused'),
  PENDING: () => 'pending',
  CAPTURE: (ok) => (ok ? 'captured' : 'capture_failed'),
  CAPTURE_FAILED: () => 'capture_failed',
  CANCELLATION: (ok) => (ok ? 'canceled' : 'cancel_failed'),
  TECHNICAL_CANCEL: (ok) => (ok ? 'canceled' : 'cancel_failed'),
  EXPIRE: () => 'expired',
  AUTHORISATION_ADJUSTMENT: () => 'authorisation_adjusted',
};
/** Events that report a failure whatever their `success` says. */
const FAILURE_EVENTS = new Set(['CAPTURE_FAILED', 'REFUND_FAILED', 'REFUNDED_REVERSED']);

const DISPUTE_EVENT: Readonly<Record<string, readonly [DisputeEvent, DisputeMoney]>> = {
  REQUEST_FOR_INFORMATION: ['request_for_information', 'none'],
  NOTIFICATION_OF_CHARGEBACK: ['notification_of_chargeback', 'none'],
  CHARGEBACK: ['chargeback', 'withdrawn'],
  CHARGEBACK_REVERSED: ['chargeback_reversed', 'returned'],
  SECOND_CHARGEBACK: ['second_chargeback', 'withdrawn'],
  PREARBITRATION_WON: ['prearbitration_won', 'none'],
  PREARBITRATION_LOST: ['prearbitration_lost', 'withdrawn'],
  DISPUTE_DEFENSE_PERIOD_ENDED: ['defense_period_ended', 'none'],
  INFORMATION_SUPPLIED: ['information_supplied', 'none'],
  NOTIFICATION_OF_FRAUD: ['notification_of_fraud', 'none'],
};

function isoOf(date: string | undefined): string {
  const t = date ? Date.parse(date) : NaN;
  return Number.isFinite(t) ? new Date(t).toISOString() : (date ?? '');
}

/** The fact one verified item states (null: an event paystep does not use). */
export function factOf(item: NotificationRequestItem, live: boolean): ConnectorFact | null {
  const code = item.eventCode as string;
  const success = item.success === 'true' && !FAILURE_EVENTS.has(code);
  const ad = item.additionalData ?? {};
  const base = {
    processor: NAME,
    id: `${NAME}:${code}:${item.pspReference}:${item.success}:${item.eventDate ?? ''}`,
    at: isoOf(item.eventDate),
    raw_event: code,
    success,
    amount: fromAdyenAmount(item.amount),
    ...(item.reason ? { reason: item.reason } : {}),
    live,
  };
  const merchantReference = item.merchantReference || null;
  const original = item.originalReference || undefined;

  if (code === 'CANCEL_OR_REFUND') {
    // Adyen says which it did in `modification.action`.
    const action = ad['modification.action'];
    if (action === 'refund')
      return refundFact(base, item, merchantReference, success ? 'succeeded' : 'failed');
    return paymentFact(
      base,
      original ?? item.pspReference,
      merchantReference,
      success ? 'canceled' : 'cancel_failed',
      item,
    );
  }
  const payment = PAYMENT_EVENT[code];
  if (payment) {
    // The authorisation is about the payment itself; modifications name it as originalReference.
    const reference =
      code === 'AUTHORISATION' || code === 'PENDING' ? item.pspReference : (original ?? item.pspReference);
    return paymentFact(base, reference, merchantReference, payment(item.success === 'true'), item);
  }
  if (code === 'REFUND') return refundFact(base, item, merchantReference, success ? 'succeeded' : 'failed');
  if (code === 'REFUND_FAILED') return refundFact(base, item, merchantReference, 'failed');
  if (code === 'REFUNDED_REVERSED') return refundFact(base, item, merchantReference, 'reversed');
  const dispute = DISPUTE_EVENT[code];
  if (dispute) {
    const fact: DisputeFact = {
      ...base,
      kind: 'dispute',
      reference: item.pspReference,
      paymentReference: original ?? item.pspReference,
      merchantReference,
      event: dispute[0],
      money: dispute[1],
    };
    const reason = ad.chargebackReasonCode ?? ad.rfiReasonCode ?? ad.nofReasonCode;
    if (reason) fact.reasonCode = reason;
    if (ad.disputeStatus) fact.processorStatus = ad.disputeStatus;
    if (ad.defensePeriodEndsAt) fact.evidenceDueBy = isoOf(ad.defensePeriodEndsAt);
    if (ad.defendable === 'true' || ad.defendable === 'false') fact.defendable = ad.defendable === 'true';
    return fact;
  }
  return null;
}

function paymentFact(
  base: Omit<PaymentFact, 'kind' | 'reference' | 'merchantReference' | 'event'>,
  reference: string,
  merchantReference: string | null,
  event: PaymentEvent,
  item: NotificationRequestItem,
): PaymentFact {
  const fact: PaymentFact = { ...base, kind: 'payment', reference, merchantReference, event };
  if (reference !== item.pspReference) fact.modificationReference = item.pspReference;
  const ad = (item.additionalData ?? {}) as Record<string, string | undefined>;
  if (event === 'refused')
    fact.failure = mapAdyenRefusal({
      resultCode: 'Refused',
      refusalReason: item.reason ?? '',
      additionalData: ad,
    });
  if (event === 'authorised' || event === 'refused') {
    const { card } = cardFromAdditionalData(ad, item.paymentMethod);
    if (card) fact.card = card;
  }
  return fact;
}

function refundFact(
  base: Omit<RefundFact, 'kind' | 'reference' | 'paymentReference' | 'merchantReference' | 'event'>,
  item: NotificationRequestItem,
  merchantReference: string | null,
  event: RefundFact['event'],
): RefundFact {
  return {
    ...base,
    kind: 'refund',
    reference: item.pspReference,
    paymentReference: item.originalReference || item.pspReference,
    merchantReference,
    event,
  };
}

// --- The webhook receiver (../webhooks.ts) -------------------------------------------------------

/** A stored Adyen event is its fact (the item's signed fields, verified): its own facts are itself. */
export const adyenWebhookFormat: WebhookFormat = {
  // The connector answers `retrieve` from the facts (Adyen has no API to read a payment).
  storesSettledFacts: true,
  processor: NAME,
  facts(stored) {
    const fact = JSON.parse(stored) as ConnectorFact;
    if (!fact || fact.processor !== NAME || !['payment', 'refund', 'dispute'].includes(fact.kind))
      throw new Error('stored Adyen webhook is not a fact');
    return [fact];
  },
};

const epochSeconds = (iso: string) => {
  const t = Date.parse(iso);
  return Math.floor((Number.isFinite(t) ? t : Date.now()) / 1000);
};

/**
 * Adyen's webhook receiver: a batch verifies only when every item does (401 otherwise, nothing
 * stored: Adyen retries the batch); each verified item that states a fact is one event, stored as
 * that fact under its id. Items of events paystep does not use are acknowledged and not stored.
 */
export function adyenWebhookReceiver(options: AdyenNotificationOptions): WebhookReceiver {
  return {
    ...adyenWebhookFormat,
    verify(request) {
      let parsed: ParsedNotification;
      try {
        parsed = parseAdyenNotification(request.body, options);
      } catch (err) {
        if (err instanceof AdyenNotificationError)
          return { ok: false, status: 400, code: 'malformed', message: err.message };
        throw err;
      }
      if (!parsed.response) {
        const refused = parsed.items.find((i) => !i.verified);
        return {
          ok: false,
          status: 401,
          code: refused?.rejection ?? 'bad_signature',
          message: `Notification item ${refused?.index ?? 0} is not signed by a configured HMAC key for a configured merchant account; nothing was stored.`,
        };
      }
      return {
        ok: true,
        events: parsed.facts.map((fact) => ({
          id: fact.id,
          type: fact.raw_event,
          created: epochSeconds(fact.at),
          live: fact.live,
          stored: JSON.stringify(fact),
          facts: [fact],
        })),
      };
    },
    // Adyen wants `[accepted]` as the body of its 2xx.
    acknowledge: () => ({ contentType: 'text/plain', body: ACCEPTED }),
  };
}
