/**
 * Whether a capture or cancel is decided when the processor answers, or only accepted.
 *
 * Stripe decides at once: its `CaptureResult` / `CancelResult` is final. Adyen answers `received`
 * and tells the outcome later by notification (CAPTURE / CAPTURE_FAILED, CANCELLATION): its results
 * say `pending: true` with the modification's own reference. The payment workflow reads this one
 * field to either record the outcome now or record the request and wait for the outcome
 * (docs/states.md, "Pending capture and cancel"). `types.ts` is left as it is: the field is an
 * optional extension every result may carry.
 */
import type { CancelResult, CaptureResult } from './types.ts';

export interface ModificationOutcome {
  /** True when the processor accepted the modification without deciding it. Absent or false: final. */
  pending?: boolean;
  /** The processor's reference of the modification itself, when it has one. */
  modificationReference?: string;
}

export type CaptureAnswer = CaptureResult & ModificationOutcome;
export type CancelAnswer = CancelResult & ModificationOutcome;

/** The pending part of a connector's answer, or undefined when the answer is final. */
export function pendingOf(r: ModificationOutcome): { reference?: string } | undefined {
  if (r.pending !== true) return undefined;
  return r.modificationReference ? { reference: r.modificationReference } : {};
}
