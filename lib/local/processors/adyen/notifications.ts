/**
 * Adyen's standard webhooks, as the simulator sends them:
 *
 *   POST <url>  Content-Type: application/json
 *   {"live":"false","notificationItems":[{"NotificationRequestItem":{…}}, …]}
 *
 * Each NotificationRequestItem carries `additionalData.hmacSignature`: HMAC-SHA256 under the
 * hex-decoded HMAC key over `pspReference:originalReference:merchantAccountCode:merchantReference:
 * value:currency:eventCode:success` (absent fields as empty strings), base64 — what
 * `@adyen/api-library`'s `hmacValidator.validateHMAC(item, key)` checks.
 *
 * A delivery is accepted when the receiver answers 2xx with a body containing `[accepted]`
 * (`requireAcceptedBody: false`: any 2xx). Otherwise it is retried on Adyen's schedule (immediately,
 * then 9, 18 and 27 s, then 2 min … 8 h, then every 8 h until 30 days; scaled by the time scale),
 * and pending deliveries are journaled so they resume after a restart (delivery.ts). Items made in
 * the same tick go out as one batch.
 */
import { createHmac } from 'node:crypto';
import type { Logger } from '../../log.ts';
import {
  DurableDelivery,
  type AttemptRecord,
  type AttemptResult,
  type DeliveryControls,
  type DeliveryStats,
  type Envelope,
} from '../framework/delivery.ts';
import { isoWithOffset, type Amount, type NotificationInput } from './model.ts';
import type { DurableStore } from '../framework/store.ts';

export interface NotificationRequestItem {
  additionalData: Record<string, string>;
  amount: Amount;
  eventCode: string;
  eventDate: string;
  merchantAccountCode: string;
  merchantReference: string;
  originalReference?: string;
  operations?: string[];
  paymentMethod?: string;
  pspReference: string;
  reason: string;
  success: 'true' | 'false';
}

export interface NotificationRequest {
  live: 'false';
  notificationItems: { NotificationRequestItem: NotificationRequestItem }[];
}

/** Where notifications go: a URL, a URL looked up at each attempt (null: not known yet), or a callback. */
export type AdyenNotifyTarget =
  | string
  | (() => string | null | undefined)
  | {
      callback: (
        raw: string,
        body: NotificationRequest,
      ) => { status: number; body: string } | Promise<{ status: number; body: string }>;
    };

/** The string Adyen signs for an item (docs.adyen.com, "Verify HMAC signatures"). */
export function hmacSigningString(item: Omit<NotificationRequestItem, 'additionalData'>): string {
  return [
    item.pspReference,
    item.originalReference ?? '',
    item.merchantAccountCode,
    item.merchantReference,
    String(item.amount.value),
    item.amount.currency,
    item.eventCode,
    item.success,
  ].join(':');
}

export function signNotificationItem(
  item: Omit<NotificationRequestItem, 'additionalData'>,
  hmacKeyHex: string,
): string {
  return createHmac('sha256', Buffer.from(hmacKeyHex, 'hex'))
    .update(hmacSigningString(item), 'utf8')
    .digest('base64');
}

/** Waits after the n-th failed attempt, in ms (then every 8 h until 30 days after the first). */
export const ADYEN_RETRY_SCHEDULE_MS = [
  9_000, 18_000, 27_000, 120_000, 300_000, 600_000, 900_000, 1_800_000, 3_600_000, 7_200_000, 14_400_000,
  28_800_000,
] as const;
const RETRY_FOR_MS = 30 * 24 * 3600 * 1000;

export function adyenRetryDelay(failedAttempts: number, sinceCreatedMs: number): number | undefined {
  const delay = ADYEN_RETRY_SCHEDULE_MS[failedAttempts - 1] ?? 28_800_000;
  return sinceCreatedMs + delay > RETRY_FOR_MS ? undefined : delay;
}

export interface AdyenNotificationSenderOptions {
  store: DurableStore;
  logger: Logger;
  hmacKeyHex: string;
  target?: AdyenNotifyTarget;
  /** Basic auth sent with each delivery (the webhook's username and password in Adyen's setup). */
  basicAuth?: { username: string; password: string };
  /** Accept only bodies containing `[accepted]` (default true). */
  requireAcceptedBody?: boolean;
  timeScale?: number;
  controls?: Partial<DeliveryControls>;
  /** Called with each item once signed (before delivery). */
  onItem?: (item: NotificationRequestItem) => void;
  now?: () => number;
  random?: () => number;
}

export class AdyenNotificationSender {
  private readonly opts: AdyenNotificationSenderOptions;
  private target?: AdyenNotifyTarget;
  private readonly delivery: DurableDelivery<NotificationRequestItem>;
  private readonly recent: NotificationRequestItem[] = [];

  constructor(opts: AdyenNotificationSenderOptions) {
    if (!/^([0-9a-fA-F]{2})+$/.test(opts.hmacKeyHex)) throw new TypeError('hmacKeyHex must be a hex string');
    this.opts = opts;
    this.target = opts.target;
    this.delivery = new DurableDelivery<NotificationRequestItem>({
      store: opts.store,
      collection: 'notification-delivery',
      logger: opts.logger,
      send: (env) => this.post(env),
      retryDelay: adyenRetryDelay,
      timeScale: opts.timeScale,
      controls: opts.controls,
      random: opts.random,
      now: opts.now,
    });
  }

  /** Builds, signs, records and (with a target) queues one item; returns it. */
  send(input: NotificationInput): NotificationRequestItem {
    const base: Omit<NotificationRequestItem, 'additionalData'> = {
      amount: { value: input.amount.value, currency: input.amount.currency },
      eventCode: input.eventCode,
      eventDate: isoWithOffset((this.opts.now ?? Date.now)()),
      merchantAccountCode: input.merchantAccountCode,
      merchantReference: input.merchantReference,
      ...(input.originalReference ? { originalReference: input.originalReference } : {}),
      ...(input.operations ? { operations: input.operations } : {}),
      ...(input.paymentMethod ? { paymentMethod: input.paymentMethod } : {}),
      pspReference: input.pspReference,
      reason: input.reason ?? '',
      success: input.success ? 'true' : 'false',
    };
    const item: NotificationRequestItem = {
      additionalData: {
        ...(input.additionalData ?? {}),
        hmacSignature: signNotificationItem(base, this.opts.hmacKeyHex),
      },
      ...base,
    };
    this.recent.push(item);
    if (this.recent.length > 1000) this.recent.shift();
    this.opts.onItem?.(item);
    if (this.target !== undefined) this.delivery.enqueue(item);
    return item;
  }

  setTarget(target: AdyenNotifyTarget | undefined): void {
    this.target = target;
  }

  /** The latest items made (at most 1000), oldest first, delivered or not. */
  items(): NotificationRequestItem[] {
    return [...this.recent];
  }

  configure(c: Partial<DeliveryControls>): DeliveryControls {
    return this.delivery.configure(c);
  }

  reset(): DeliveryControls {
    return this.delivery.reset();
  }

  get controls(): DeliveryControls {
    return this.delivery.settings;
  }

  stats(): DeliveryStats & { pending: number } {
    return { ...this.delivery.stats(), pending: this.delivery.pendingEnvelopes().length };
  }

  attempts(): AttemptRecord[] {
    return this.delivery.attempts();
  }

  pending(): Envelope<NotificationRequestItem>[] {
    return this.delivery.pendingEnvelopes();
  }

  releaseHeld(): void {
    this.delivery.releaseHeld();
  }

  idle(): Promise<void> {
    return this.delivery.idle();
  }

  resume(): void {
    this.delivery.resume();
  }

  stop(): Promise<void> {
    return this.delivery.stop();
  }

  private async post(env: Envelope<NotificationRequestItem>): Promise<AttemptResult> {
    const body: NotificationRequest = {
      live: 'false',
      notificationItems: env.items.map((i) => ({ NotificationRequestItem: i })),
    };
    const raw = JSON.stringify(body);
    const target = this.target;
    let answer: { status: number; body: string };
    if (target === undefined) return { accepted: false, status: 'no-target' };
    if (typeof target === 'object') {
      try {
        answer = await target.callback(raw, body);
      } catch {
        return { accepted: false, status: 'error' };
      }
    } else {
      const url = typeof target === 'string' ? target : target();
      if (!url) return { accepted: false, status: 'no-target' };
      const headers: Record<string, string> = {
        'content-type': 'application/json; charset=utf-8',
        'user-agent': 'Adyen HttpClient 1.0 (paystep simulator)',
      };
      if (this.opts.basicAuth) {
        const { username, password } = this.opts.basicAuth;
        headers.authorization = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
      }
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers,
          body: raw,
          signal: AbortSignal.timeout(10_000),
        });
        answer = { status: res.status, body: await res.text().catch(() => '') };
      } catch {
        return { accepted: false, status: 'error' };
      }
    }
    const ok =
      answer.status >= 200 &&
      answer.status < 300 &&
      (this.opts.requireAcceptedBody === false || answer.body.includes('[accepted]'));
    return { accepted: ok, status: answer.status };
  }
}
