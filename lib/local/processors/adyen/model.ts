/**
 * The Adyen simulator's objects (as stored in its journal), its error shape, and small helpers
 * shared by its resource modules. Card data is never stored: a payment keeps the BIN, the last
 * four digits, the brand and the expiry, as Adyen's responses show them.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../../log.ts';
import type { DurableStore, DurableTimers } from '../framework/store.ts';

export type Json = Record<string, unknown>;

export interface Amount {
  value: number;
  currency: string;
}

/** What the simulator keeps of a card (never the number). */
export interface CardInfo {
  /** Adyen's brand code (`visa`, `mc`, `amex`) and variant (`visaclassic`, `mcdebit`, …). */
  brand: string;
  variant: string;
  bin: string;
  last4: string;
  issuerCountry: string;
  fundingSource: 'CREDIT' | 'DEBIT' | 'PREPAID';
  expiryMonth: string;
  expiryYear: string;
  holderName?: string;
}

/** Behaviour chosen by Adyen's test values (holder name, RequestedTestAcquirerResponseCode). */
export interface Magic {
  /** `capture failed` / `refund failed`: the modification succeeds, then fails (…_FAILED). */
  captureFails?: boolean;
  refundFails?: boolean;
  /** A dispute opened once the payment is captured. */
  dispute?: { kind: 'chargeback' | 'rfi'; reasonCode?: string; outcome?: 'won' | 'lost' };
}

export type PaymentStatus =
  | 'redirect' // RedirectShopper / ChallengeShopper: waiting for /payments/details
  | 'received' // Received: outcome follows as an AUTHORISATION notification
  | 'authorised'
  | 'refused'
  | 'error'
  | 'cancelled';

export type CaptureMode = 'immediate' | 'delayed' | 'manual';

export interface Payment {
  pspReference: string;
  merchantAccount: string;
  merchantReference: string;
  amount: Amount;
  status: PaymentStatus;
  resultCode: string;
  refusalReason?: string;
  refusalReasonCode?: string;
  refusalReasonRaw?: string;
  authCode?: string;
  card: CardInfo;
  magic: Magic;
  captureMode: CaptureMode;
  captureDelayHours?: number;
  /** Amounts in minor units: authorised (0 once cancelled or released), captured, refunded. */
  authorisedValue: number;
  capturedValue: number;
  refundedValue: number;
  /** Captures succeeded so far (a partial capture releases the rest unless multiple are allowed). */
  captures: number;
  cancelled: boolean;
  shopperReference?: string;
  storedPaymentMethodId?: string;
  /** The test response asked for, applied once the shopper has authenticated (3-D Secure). */
  test?: { code: number; raw?: string };
  /** `storePaymentMethod` asked on a payment that authenticates first; `storedNow`: stored by it. */
  storeRequested?: boolean;
  storedNow?: boolean;
  /** The authentication step (3-D Secure) and the redirect it waits for. */
  redirect?: { token: string; returnUrl: string; native: boolean; outcome?: AuthOutcome };
  createdAt: number;
}

export type AuthOutcome = 'authenticated' | 'failed' | 'cancelled';

export type ModificationType = 'capture' | 'cancel' | 'refund' | 'reversal';

export interface Modification {
  pspReference: string;
  paymentPspReference: string;
  type: ModificationType;
  merchantAccount: string;
  amount?: Amount;
  reference?: string;
  status: 'received' | 'succeeded' | 'failed';
  reason?: string;
  /** For a reversal: what it did (`cancel` or `refund`). */
  action?: 'cancel' | 'refund';
  createdAt: number;
}

export interface StoredMethod {
  id: string;
  shopperReference: string;
  card: CardInfo;
  magic: Magic;
  createdAt: number;
}

/** Collections of the simulator's store. */
export const C = {
  payment: 'payment',
  modification: 'modification',
  storedMethod: 'stored-method',
  redirect: 'redirect',
  dispute: 'dispute',
  entry: 'settlement-entry',
  batch: 'settlement-batch',
  idempotency: 'idempotency',
  counter: 'counter',
} as const;

/** Adyen's error body (ServiceError). */
export interface AdyenErrorBody {
  status: number;
  errorCode: string;
  message: string;
  errorType: 'validation' | 'security' | 'configuration' | 'internal';
  pspReference?: string;
}

export class AdyenError extends Error {
  readonly status: number;
  readonly errorCode: string;
  readonly errorType: AdyenErrorBody['errorType'];

  constructor(status: number, errorCode: string, message: string, errorType: AdyenErrorBody['errorType']) {
    super(message);
    this.status = status;
    this.errorCode = errorCode;
    this.errorType = errorType;
  }

  body(pspReference: string): AdyenErrorBody {
    return {
      status: this.status,
      errorCode: this.errorCode,
      message: this.message,
      errorType: this.errorType,
      pspReference,
    };
  }
}

/**
 * Error codes as Adyen's "Error codes and messages" page lists them (docs.adyen.com/development-
 * resources/error-codes). Where a message is the simulator's own wording it is marked so.
 */
export const errors = {
  unauthorised: () => new AdyenError(401, '000', 'HTTP Status Response - Unauthorised', 'security'),
  unparsable: () => new AdyenError(400, '000', 'Unable to parse message', 'validation'),
  invalidMerchant: () => new AdyenError(403, '901', 'Invalid Merchant Account', 'security'),
  noAmount: () => new AdyenError(422, '100', 'No amount specified', 'validation'),
  invalidAmount: () => new AdyenError(422, '137', 'Invalid amount specified', 'validation'),
  unsupportedCurrency: () => new AdyenError(422, '138', 'Unsupported currency specified', 'validation'),
  noReference: () => new AdyenError(422, '130', 'Reference Missing', 'validation'),
  invalidCard: () => new AdyenError(422, '101', 'Invalid card number', 'validation'),
  invalidExpiry: () => new AdyenError(422, '129', 'Expiry Date Invalid', 'validation'),
  undecryptable: () => new AdyenError(422, '174', 'Unable to decrypt data', 'validation'),
  storedNotFound: () => new AdyenError(422, '803', 'PaymentDetail not found', 'validation'),
  noOriginal: () =>
    new AdyenError(422, '167', 'Original pspReference required for this operation', 'validation'),
  /** The simulator's wording for a field the request lacks. */
  required: (field: string) =>
    new AdyenError(422, '000', `Required field '${field}' is not provided.`, 'validation'),
  /** The simulator's wording for an unsupported payment method type. */
  unsupportedMethod: (type: string) =>
    new AdyenError(422, '000', `Payment method ${type} is not supported by the simulator`, 'configuration'),
  inProgress: () => new AdyenError(422, '704', 'request already processed or in progress', 'validation'),
  internal: () => new AdyenError(500, '000', 'An unknown error occurred', 'internal'),
};

/** A new PSP reference: 16 characters, digits and capitals, as Adyen's current ones. */
export function newPspReference(taken: (psp: string) => boolean): string {
  const alphabet = '0123456789ABCDEFGHJKLMNPQRSTUVWXYZ';
  for (;;) {
    const bytes = randomBytes(16);
    let s = '';
    for (const b of bytes) s += alphabet[b % alphabet.length];
    if (!taken(s)) return s;
  }
}

/** Minor-unit exponent of a currency (ISO 4217). */
export function exponent(currency: string): number {
  const c = currency.toUpperCase();
  if (
    [
      'BIF',
      'CLP',
      'DJF',
      'GNF',
      'ISK',
      'JPY',
      'KMF',
      'KRW',
      'PYG',
      'RWF',
      'UGX',
      'VND',
      'VUV',
      'XAF',
      'XOF',
      'XPF',
    ].includes(c)
  )
    return 0;
  if (['BHD', 'IQD', 'JOD', 'KWD', 'LYD', 'OMR', 'TND'].includes(c)) return 3;
  return 2;
}

/** Minor units as a decimal string in major units (1234 EUR → "12.34"). */
export function formatMinor(value: number, currency: string): string {
  const e = exponent(currency);
  const sign = value < 0 ? '-' : '';
  const abs = Math.abs(Math.round(value));
  if (e === 0) return `${sign}${abs}`;
  const s = abs.toString().padStart(e + 1, '0');
  return `${sign}${s.slice(0, -e)}.${s.slice(-e)}`;
}

/** ISO 8601 with offset, as Adyen's eventDate (`2024-01-31T10:15:30+00:00`). */
export function isoWithOffset(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, '+00:00');
}

/** What a resource module needs from the simulator. */
export interface SimContext {
  store: DurableStore;
  timers: DurableTimers;
  logger: Logger;
  now: () => number;
  baseUrl: () => string;
  newPsp: () => string;
  /** Queues a notification item (signed and delivered by the notification sender). */
  notify: (item: NotificationInput) => void;
  delays: AdyenDelays;
  merchantAccounts: readonly string[];
}

/** Simulated-time delays (ms; the time scale divides them). */
export interface AdyenDelays {
  /** Request → CAPTURE / CANCELLATION / REFUND notification. */
  modification: number;
  /** Succeeded modification → CAPTURE_FAILED / REFUND_FAILED (`capture failed` / `refund failed`). */
  modificationFailure: number;
  /** Received (code 13) → AUTHORISATION notification. */
  pendingAuthorisation: number;
  /** Capture → NOTIFICATION_OF_CHARGEBACK or REQUEST_FOR_INFORMATION. */
  dispute: number;
  /** NOTIFICATION_OF_CHARGEBACK → CHARGEBACK (funds debited). */
  chargeback: number;
  /** defendDispute → outcome, when the payment's test value decides it. */
  disputeDecision: number;
  /** Dispute opened → defense period end (`defensePeriodEndsAt`). */
  defensePeriod: number;
}

export const DEFAULT_DELAYS: AdyenDelays = {
  modification: 500,
  modificationFailure: 1000,
  pendingAuthorisation: 3000,
  dispute: 2000,
  chargeback: 500,
  disputeDecision: 2000,
  defensePeriod: 20 * 24 * 3600 * 1000,
};

/** A notification item before signing (NotificationRequestItem without hmacSignature). */
export interface NotificationInput {
  eventCode: string;
  success: boolean;
  pspReference: string;
  originalReference?: string;
  merchantAccountCode: string;
  merchantReference: string;
  amount: Amount;
  paymentMethod?: string;
  reason?: string;
  operations?: string[];
  additionalData?: Record<string, string>;
}
