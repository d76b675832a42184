/**
 * The contract between the console's handler (lambdas/console/handler.ts: sessions, CSRF, roles,
 * audit, layout) and its screens (lambdas/console/pages/*.ts). A screen is a list of
 * `ConsoleRoute`s; it gets a `ConsoleRequest` whose operator is signed in, whose permission for
 * the route was checked and whose form's CSRF token was verified, and answers a
 * `ConsoleResponse`. Screens call the same services as the API, the workflows and the CLI; they
 * never talk to DynamoDB directly and never import a processor SDK.
 */
import type { Html } from './html.ts';
import type { Operator, Permission } from './model.ts';
import { PaystepError } from '../shared/errors.ts';

export interface ConsoleRequest {
  operator: Operator;
  method: 'GET' | 'POST';
  /** The path below /console, e.g. `/payments/pay_123` (`/` for home). */
  path: string;
  /** Values of the route's `{name}` segments, already checked to be plausible ids (≤ 200 chars). */
  params: Record<string, string>;
  query: Record<string, string>;
  /** A POST's application/x-www-form-urlencoded fields (its CSRF token already verified). */
  form: Record<string, string>;
  /** Embed in every form: `<input type="hidden" name="csrf" value="…">` (see csrfField). */
  csrfToken: string;
  /** The request came from htmx (HX-Request): answer a fragment where the screen has one. */
  htmx: boolean;
  /** Epoch milliseconds of the request. */
  now: number;
  requestId: string;
  /** Writes one audit-log entry for an operator action (who and when are added). */
  audit(entry: AuditDraft): Promise<void>;
}

export interface AuditDraft {
  /** What was done, e.g. `refund.create`, `review.approve`, `incident.resolve`. */
  action: string;
  /** What it was done to. */
  target: { kind: string; id: string };
  merchant_id?: string;
  before?: unknown;
  after?: unknown;
  note?: string;
}

export interface AuditEntry extends AuditDraft {
  /** `aud_…` */
  id: string;
  /** Epoch milliseconds. */
  at: number;
  operator: { id: string; name: string; role: string };
}

/** Top-level navigation sections (the layout highlights the current one). */
export type NavKey =
  | 'home'
  | 'payments'
  | 'executions'
  | 'reviews'
  | 'disputes'
  | 'processors'
  | 'subscriptions'
  | 'finance'
  | 'analytics'
  | 'audit';

export type ConsoleResponse =
  /** A whole page: the handler wraps it in the layout (navigation for the operator's role). */
  | { kind: 'page'; title: string; nav: NavKey; body: Html; status?: number }
  /** Part of a page, for htmx (no layout). */
  | { kind: 'fragment'; body: Html; status?: number }
  /** After a POST: see-other to a console path (below /console), with a one-time message. */
  | { kind: 'redirect'; to: string; flash?: string }
  | { kind: 'download'; filename: string; contentType: string; body: string }
  /** A 303 to a URL outside the console (a presigned S3 download), never to a path of it. */
  | { kind: 'external'; to: string };

export interface ConsoleRoute {
  method: 'GET' | 'POST';
  /** Below /console, with `{name}` segments, e.g. `/payments/{id}`. */
  path: string;
  permission: Permission;
  handler(req: ConsoleRequest): Promise<ConsoleResponse>;
}

/**
 * An expected refusal a screen raises (bad form field, object not found or not visible, over the
 * refund limit): the handler renders it as a message with this status, never as a 5xx.
 */
export class ConsoleError extends PaystepError {
  override name = 'ConsoleError';
  readonly status: 400 | 403 | 404 | 409;
  constructor(status: 400 | 403 | 404 | 409, message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.status = status;
  }
}
