/**
 * Who may see and do what in the ops console (docs/console.md "Roles"): pure, no I/O.
 *
 * Three roles, as the people who use it: `support` explains payments and acts on a customer's
 * behalf within a refund limit; `finance` closes the month (reconciliation, reports, ledger);
 * `admin` runs the platform (everything, incl. incidents, routing and executions). An operator
 * may be limited to one merchant: every screen then shows that merchant's objects only.
 */

export const ROLES = ['support', 'finance', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export const PERMISSIONS = [
  'home.read',
  'payments.read',
  'refunds.create',
  'reviews.decide',
  'disputes.read',
  'disputes.respond',
  'executions.read',
  'executions.act',
  'processors.read',
  'incidents.act',
  'routing.read',
  'subscriptions.read',
  'reconciliation.read',
  'reconciliation.resolve',
  'reports.read',
  'ledger.read',
  'analytics.read',
  'audit.read',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

const GRANTS: Record<Role, readonly Permission[]> = {
  support: [
    'home.read',
    'payments.read',
    'refunds.create',
    'reviews.decide',
    'disputes.read',
    'executions.read',
    'processors.read',
    'subscriptions.read',
    'analytics.read',
  ],
  finance: [
    'home.read',
    'payments.read',
    'disputes.read',
    'subscriptions.read',
    'reconciliation.read',
    'reconciliation.resolve',
    'reports.read',
    'ledger.read',
    'analytics.read',
  ],
  admin: PERMISSIONS,
};

export function can(role: Role, permission: Permission): boolean {
  return GRANTS[role].includes(permission);
}

/** A support operator's default refund limit, in the payment currency's minor units (100.00). */
export const DEFAULT_SUPPORT_REFUND_LIMIT = 10_000;

export interface Operator {
  /** `op_…` */
  id: string;
  name: string;
  role: Role;
  /** Limits every screen to this merchant's objects; absent: all merchants. */
  merchant_id?: string;
  /**
   * Largest refund this operator may issue, in the payment currency's minor units. Support only
   * (default DEFAULT_SUPPORT_REFUND_LIMIT); finance cannot refund; admin has no limit.
   */
  refund_limit?: number;
  /** Epoch seconds. */
  created: number;
  disabled?: boolean;
}

/** The most this operator may refund at once, in minor units; undefined: no limit; 0: none. */
export function refundLimit(op: Operator): number | undefined {
  if (!can(op.role, 'refunds.create')) return 0;
  if (op.role === 'admin') return undefined;
  return op.refund_limit ?? DEFAULT_SUPPORT_REFUND_LIMIT;
}

/** Whether an object of `merchantId` is visible to this operator. */
export function seesMerchant(op: Operator, merchantId: string): boolean {
  return op.merchant_id === undefined || op.merchant_id === merchantId;
}
