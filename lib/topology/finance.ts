/**
 * Finance (issue 5): the double-entry ledger fed by the main table's stream (a stream consumer of
 * the shared router: lambdas/ledger/stream.ts) and its invariant check run in the background for the
 * console (the `ledger-checks` queue), payout reconciliation (a workflow over chunks in
 * the settlements bucket), and the scheduled finance reports in the reports bucket.
 */
import type { TopologyFragment } from '../topology.ts';
import { CHECK_TIMEOUT_SECONDS } from '../../lambdas/ledger/check-run.ts';

const job = { timeoutSeconds: 900, memoryMb: 1024 };

export const finance: TopologyFragment = {
  functions: {
    'reconciliation-prepare': {
      entry: 'lambdas/reconciliation/prepare.ts',
      description:
        'Reconciliation workflow: reads a settlement file or payout, normalizes it, splits it into chunks',
      ...job,
      uses: { tables: ['main'], buckets: ['settlements'], secrets: ['stripe-secret-key'] },
    },
    'reconciliation-match': {
      entry: 'lambdas/reconciliation/match.ts',
      description: 'Reconciliation workflow: matches one chunk with payments, settles them, books fees',
      ...job,
      uses: { tables: ['main'], buckets: ['settlements'] },
    },
    'reconciliation-finish': {
      entry: 'lambdas/reconciliation/finish.ts',
      description:
        'Reconciliation workflow: payout totals, missing settlements, payouts in the ledger, reports',
      ...job,
      uses: { tables: ['main'], buckets: ['settlements', 'reports'] },
    },
    'reconciliation-sync': {
      entry: 'lambdas/reconciliation/sync.ts',
      description:
        'Scheduled: starts reconciliations of new processor payouts and of files in the drop prefix',
      timeoutSeconds: 300,
      uses: {
        tables: ['main'],
        buckets: ['settlements'],
        stateMachines: ['reconciliation'],
        secrets: ['stripe-secret-key'],
      },
    },
    'ledger-check': {
      entry: 'lambdas/ledger/check-job.ts',
      description:
        'ledger-checks consumer: runs the ledger invariant check asked for in the console, stores the latest result',
      timeoutSeconds: CHECK_TIMEOUT_SECONDS,
      memoryMb: 1024,
      uses: { tables: ['main'] },
    },
    'finance-reports': {
      entry: 'lambdas/reports/daily.ts',
      description:
        'Scheduled: daily transactions, summary, payment performance and subscriptions reports per merchant',
      ...job,
      uses: { tables: ['main'], buckets: ['reports'] },
    },
  },
  stateMachines: {
    reconciliation: {
      file: 'statemachines/reconciliation.asl.json',
      type: 'STANDARD',
      description:
        'Payout reconciliation: split settlement data into chunks, match each, check totals, report',
      substitutions: {
        PrepareReconciliationFunctionArn: { functionArn: 'reconciliation-prepare' },
        MatchReconciliationFunctionArn: { functionArn: 'reconciliation-match' },
        FinishReconciliationFunctionArn: { functionArn: 'reconciliation-finish' },
      },
    },
  },
  buckets: {
    settlements: {
      description:
        'Processor settlement files: drop prefix incoming/<processor>/ (reconciled, then moved to processed/), ' +
        'CLI imports under imports/, reconciliation work files under work/',
      // A file dropped by finance starts its reconciliation at once (the hourly sync is the safety net).
      onObjectCreated: [{ prefix: 'incoming/', function: 'reconciliation-sync' }],
    },
  },
  schedules: {
    'finance-daily-reports': {
      description:
        'Daily finance reports (transactions, summary, performance) of the previous day, 02:15 UTC',
      expression: 'cron(15 2 * * ? *)',
      target: { function: 'finance-reports' },
      input: { scheduled_time: '<aws.scheduler.scheduled-time>' },
    },
    'reconciliation-sync': {
      description: 'Hourly: reconciles new processor payouts and files dropped in the settlements bucket',
      expression: 'rate(1 hour)',
      target: { function: 'reconciliation-sync' },
    },
  },
  queues: {
    'ledger-checks': {
      description: 'Requests of a ledger invariant check from the console (one request id a message)',
      consumer: 'ledger-check',
      batchSize: 1,
      // Longer than the function's timeout (after which a `running` check is stale), so a message
      // redelivered after a crash finds the run it left stale and takes it over.
      visibilityTimeoutSeconds: CHECK_TIMEOUT_SECONDS + 180,
      maxReceiveCount: 3,
    },
  },
  grants: {
    // The ledger consumer (lambdas/ledger/stream.ts) runs inside the stream router.
    'stream-router': { tables: ['main'] },
  },
};
