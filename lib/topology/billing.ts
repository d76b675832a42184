/**
 * Billing (docs/billing.md): customers, plans, subscriptions and invoices, and the billing workflow
 * (one execution per subscription period, `<subscription>-p<n>`). A renewal is an ordinary payment:
 * whatever charges an invoice starts the payment workflow, so it uses `payment` as well.
 */
import type { FunctionUses, TopologyFragment } from '../topology.ts';

const read: FunctionUses = { tables: ['main'] };
/** Charges invoices (starts payments), starts period executions and resumes a waiting one. */
const charges: FunctionUses = { tables: ['main'], stateMachines: ['payment', 'billing'] };

export const billing: TopologyFragment = {
  functions: {
    'billing-customers': {
      entry: 'lambdas/billing/api/customers.ts',
      description:
        "POST/GET /v1/customers[/{id}]: a new payment method retries the customer's failed invoices at once",
      timeoutSeconds: 30,
      uses: charges,
    },
    'billing-plans': {
      entry: 'lambdas/billing/api/plans.ts',
      description: 'POST/GET /v1/plans[/{id}]',
      uses: read,
    },
    'billing-subscriptions': {
      entry: 'lambdas/billing/api/subscriptions.ts',
      description:
        'POST/GET /v1/subscriptions[/{id}], cancel, pause, resume, plan change (prorated): starts the period executions',
      timeoutSeconds: 30,
      uses: charges,
    },
    'billing-invoices': {
      entry: 'lambdas/billing/api/invoices.ts',
      description: 'GET /v1/invoices[/{id}], POST /v1/invoices/{id}/pay (retry now) and /void',
      timeoutSeconds: 30,
      uses: charges,
    },
    'billing-analytics': {
      entry: 'lambdas/billing/api/analytics.ts',
      description: 'GET /v1/analytics/recovery: what dunning won back, by attempt, decline code and days',
      timeoutSeconds: 30,
      uses: read,
    },
    'billing-settings': {
      entry: 'lambdas/billing/api/settings.ts',
      description: "GET/POST /v1/billing/dunning_policy: the merchant's dunning policy",
      uses: read,
    },
    'billing-step': {
      entry: 'lambdas/billing/steps/step.ts',
      description: 'Billing workflow: schedule, open the invoice, charge it, dunning, next period',
      timeoutSeconds: 30,
      uses: charges,
    },
  },
  routes: [
    { method: 'POST', path: '/v1/customers', function: 'billing-customers', auth: 'merchant' },
    { method: 'GET', path: '/v1/customers', function: 'billing-customers', auth: 'merchant' },
    { method: 'GET', path: '/v1/customers/{id}', function: 'billing-customers', auth: 'merchant' },
    { method: 'POST', path: '/v1/customers/{id}', function: 'billing-customers', auth: 'merchant' },
    { method: 'GET', path: '/v1/billing/dunning_policy', function: 'billing-settings', auth: 'merchant' },
    { method: 'POST', path: '/v1/billing/dunning_policy', function: 'billing-settings', auth: 'merchant' },
    { method: 'POST', path: '/v1/plans', function: 'billing-plans', auth: 'merchant' },
    { method: 'GET', path: '/v1/plans', function: 'billing-plans', auth: 'merchant' },
    { method: 'GET', path: '/v1/plans/{id}', function: 'billing-plans', auth: 'merchant' },
    { method: 'POST', path: '/v1/subscriptions', function: 'billing-subscriptions', auth: 'merchant' },
    { method: 'GET', path: '/v1/subscriptions', function: 'billing-subscriptions', auth: 'merchant' },
    { method: 'GET', path: '/v1/subscriptions/{id}', function: 'billing-subscriptions', auth: 'merchant' },
    { method: 'POST', path: '/v1/subscriptions/{id}', function: 'billing-subscriptions', auth: 'merchant' },
    {
      method: 'POST',
      path: '/v1/subscriptions/{id}/cancel',
      function: 'billing-subscriptions',
      auth: 'merchant',
    },
    {
      method: 'POST',
      path: '/v1/subscriptions/{id}/pause',
      function: 'billing-subscriptions',
      auth: 'merchant',
    },
    {
      method: 'POST',
      path: '/v1/subscriptions/{id}/resume',
      function: 'billing-subscriptions',
      auth: 'merchant',
    },
    { method: 'GET', path: '/v1/invoices', function: 'billing-invoices', auth: 'merchant' },
    { method: 'GET', path: '/v1/analytics/recovery', function: 'billing-analytics', auth: 'merchant' },
    { method: 'GET', path: '/v1/invoices/{id}', function: 'billing-invoices', auth: 'merchant' },
    { method: 'POST', path: '/v1/invoices/{id}/pay', function: 'billing-invoices', auth: 'merchant' },
    { method: 'POST', path: '/v1/invoices/{id}/void', function: 'billing-invoices', auth: 'merchant' },
  ],
  stateMachines: {
    billing: {
      file: 'statemachines/billing.asl.json',
      type: 'STANDARD',
      description:
        'One subscription period: wait until it starts, open its invoice, charge it as a payment, dunning, next period',
      substitutions: {
        BillingStepFunctionArn: { functionArn: 'billing-step' },
      },
    },
  },
};
