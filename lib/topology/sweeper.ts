/** The sweeper: a schedule that leaves no payment or refund stuck (lambdas/sweeper/run.ts). */
import type { TopologyFragment } from '../topology.ts';

export const sweeper: TopologyFragment = {
  functions: {
    sweeper: {
      entry: 'lambdas/sweeper/run.ts',
      description: 'Scheduled: re-checks stuck payments and refunds with the processor, resumes or escalates',
      timeoutSeconds: 300,
      uses: {
        tables: ['main'],
        buckets: ['reports'],
        stateMachines: ['payment', 'refund', 'dispute'],
        secrets: ['stripe-secret-key', 'adyen-api-key'],
      },
    },
  },
  schedules: {
    sweeper: {
      description: 'Every 5 minutes: stuck payments and refunds (lost webhooks, dead workflows)',
      expression: 'rate(5 minutes)',
      target: { function: 'sweeper' },
    },
  },
};
