/**
 * Disputes: the API (read, list, evidence, accept), the dispute workflow and its tasks. Processor
 * events reach disputes as neutral dispute facts through `applyDisputeFact`
 * (lambdas/disputes/facts.ts), called by webhook processing; its function needs
 * `disputeEventUses`. See docs/disputes.md.
 */
import type { FunctionUses, TopologyFragment } from '../topology.ts';

/** What a function applying processor dispute events (or the sweeper's refresh) must declare in its `uses`. */
export const disputeEventUses: FunctionUses = {
  tables: ['main'],
  stateMachines: ['dispute'],
  secrets: ['stripe-secret-key', 'adyen-api-key'],
};

/**
 * Evidence and acceptance go to the dispute's processor through its dispute connector
 * (lambdas/connectors/registry.ts `disputes`): Stripe's key, or Adyen's (its Disputes API) and the
 * stored notification facts Adyen's connector reads a dispute from (table `main`).
 */
const answer: FunctionUses = {
  tables: ['main'],
  stateMachines: ['dispute'],
  secrets: ['stripe-secret-key', 'adyen-api-key'],
};

export const disputes: TopologyFragment = {
  functions: {
    'disputes-get': {
      entry: 'lambdas/disputes/get.ts',
      description: 'GET /v1/disputes/{id}',
      uses: { tables: ['main'] },
    },
    'disputes-list': {
      entry: 'lambdas/disputes/list.ts',
      description: "GET /v1/disputes?payment=: the merchant's disputes, or one payment's",
      uses: { tables: ['main'] },
    },
    'disputes-evidence': {
      entry: 'lambdas/disputes/evidence.ts',
      description:
        'POST /v1/disputes/{id}/evidence: forwards evidence to the processor, resumes the workflow',
      timeoutSeconds: 30,
      uses: answer,
    },
    'disputes-accept': {
      entry: 'lambdas/disputes/accept.ts',
      description:
        'POST /v1/disputes/{id}/accept: accepts the dispute at the processor (lost), resumes the workflow',
      timeoutSeconds: 30,
      uses: answer,
    },
    'dispute-step': {
      entry: 'lambdas/disputes/steps/step.ts',
      description: 'Dispute workflow: record, check, remind, escalate, close (payment follows the dispute)',
      uses: { tables: ['main'] },
    },
    'dispute-hold': {
      entry: 'lambdas/disputes/steps/hold.ts',
      description: 'Dispute workflow: stores the task token of a waiting step on the dispute',
      uses: { tables: ['main'] },
    },
  },
  routes: [
    { method: 'GET', path: '/v1/disputes', function: 'disputes-list', auth: 'merchant' },
    { method: 'GET', path: '/v1/disputes/{id}', function: 'disputes-get', auth: 'merchant' },
    { method: 'POST', path: '/v1/disputes/{id}/evidence', function: 'disputes-evidence', auth: 'merchant' },
    { method: 'POST', path: '/v1/disputes/{id}/accept', function: 'disputes-accept', auth: 'merchant' },
  ],
  stateMachines: {
    dispute: {
      file: 'statemachines/dispute.asl.json',
      type: 'STANDARD',
      description:
        'Dispute lifecycle: hold the funds, remind before the evidence deadline, wait for evidence and the decision, escalate',
      substitutions: {
        DisputeStepFunctionArn: { functionArn: 'dispute-step' },
        HoldDisputeFunctionArn: { functionArn: 'dispute-hold' },
      },
    },
  },
};
