/**
 * The incident backlog (docs/routing.md "Incidents"): work that only one processor can do —
 * capturing or canceling a payment it authorized, refunding a payment it captured, checking an
 * outcome it alone knows — held while that processor is in an `open` incident instead of failing,
 * and replayed in the order it was held, idempotently, when the incident is resolved. Pure types
 * and ordering; the store is `lambdas/store/backlog.ts`.
 */

export const HELD_KINDS = ['capture', 'cancel', 'refund', 'outcome_check'] as const;
export type HeldKind = (typeof HELD_KINDS)[number];

/** held → released (handed back to its workflow when the incident resolved) → done | failed. */
export const HELD_STATUSES = ['held', 'released', 'done', 'failed'] as const;
export type HeldStatus = (typeof HELD_STATUSES)[number];

export interface HeldOperation {
  /** `<incident>#<kind>#<payment or refund id>`: one held entry per operation and incident. */
  id: string;
  incident_id: string;
  processor: string;
  merchant_id: string;
  kind: HeldKind;
  payment_id: string;
  /** For a refund. */
  refund_id?: string;
  /** Minor units of `currency`, when the operation moves money. */
  amount?: number;
  currency?: string;
  /** Epoch ms. */
  held_at: number;
  status: HeldStatus;
  released_at?: number;
  finished_at?: number;
  /** What the replay ended in, in words (e.g. `captured`, `refund succeeded`, `declined: …`). */
  outcome?: string;
}

/** Replay order: the order in which operations were held (then by id, for equal times). */
export function replayOrder(held: readonly HeldOperation[]): HeldOperation[] {
  return [...held].sort((a, b) => a.held_at - b.held_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
