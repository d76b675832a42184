/** Refunds: API, ops CLI path (same service), and the refund workflow. */
import type { TopologyFragment } from '../topology.ts';

/** The processors' API keys (the registry builds the payment's processor's adapter). */
const processors = { secrets: ['stripe-secret-key', 'adyen-api-key'] };

export const refunds: TopologyFragment = {
  functions: {
    'refunds-create': {
      entry: 'lambdas/refunds/create.ts',
      description: 'POST /v1/refunds: reserves the amount and starts the refund workflow',
      timeoutSeconds: 15,
      uses: { tables: ['main'], stateMachines: ['refund'] },
    },
    'refunds-get': {
      entry: 'lambdas/refunds/get.ts',
      description: 'GET /v1/refunds/{id} and GET /v1/refunds?payment=',
      uses: { tables: ['main'] },
    },
    'refund-submit': {
      entry: 'lambdas/refunds/steps/submit.ts',
      description: 'Refund workflow: refund with the processor',
      timeoutSeconds: 30,
      uses: { tables: ['main'], ...processors },
    },
    'refund-hold': {
      entry: 'lambdas/refunds/steps/hold.ts',
      description: 'Refund workflow: stores the task token while waiting for the final outcome',
      uses: { tables: ['main'], stateMachines: ['refund'] },
    },
    'refund-poll': {
      entry: 'lambdas/refunds/steps/poll.ts',
      description: 'Refund workflow: asks the processor when no webhook came in time',
      timeoutSeconds: 30,
      uses: { tables: ['main'], ...processors },
    },
    'refund-finish': {
      entry: 'lambdas/refunds/steps/finish.ts',
      description: 'Refund workflow: settles or releases the reservation on the payment',
      uses: { tables: ['main'] },
    },
  },
  routes: [
    { method: 'POST', path: '/v1/refunds', function: 'refunds-create', auth: 'merchant' },
    { method: 'GET', path: '/v1/refunds', function: 'refunds-get', auth: 'merchant' },
    { method: 'GET', path: '/v1/refunds/{id}', function: 'refunds-get', auth: 'merchant' },
  ],
  stateMachines: {
    refund: {
      file: 'statemachines/refund.asl.json',
      type: 'STANDARD',
      description: 'Refund lifecycle: processor refund, final outcome by webhook or poll, settle or release',
      substitutions: {
        SubmitRefundFunctionArn: { functionArn: 'refund-submit' },
        HoldRefundFunctionArn: { functionArn: 'refund-hold' },
        PollRefundFunctionArn: { functionArn: 'refund-poll' },
        FinishRefundFunctionArn: { functionArn: 'refund-finish' },
        WaitForProcessorFunctionArn: { functionArn: 'backlog-wait' },
      },
    },
  },
};
