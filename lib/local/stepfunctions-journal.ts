/**
 * The executions journal of the local Step Functions (lib/local/stepfunctions.ts), as records:
 * replaying it rebuilds the executions that were running (their start, current run, history,
 * recorded task results and dispatched callbacks), and the running executions are written back as
 * the records that recreate them when the journal is compacted. A finished execution leaves the
 * journal for the archive (lib/local/execution-archive.ts) as its finishedRecord.
 */
import type { FinishedRecord, FinishedStatus } from './execution-archive.ts';
import type { Execution, HistoryEvent, JournalRecord } from './stepfunctions-model.ts';

/** Rebuilds into `executions` the executions a journal describes (skipping those already archived). */
export function replayJournal(
  records: Iterable<JournalRecord>,
  archived: (arn: string) => boolean,
  executions: Map<string, Execution>,
): void {
  for (const r of records) {
    if (archived(r.arn)) continue; // finished and archived: its journal lines are stale
    if (r.t === 'start') {
      executions.set(r.arn, {
        arn: r.arn,
        machine: r.machine,
        name: r.name,
        input: r.input,
        status: 'RUNNING',
        startDate: r.startDate,
        run: 0,
        history: [],
        memo: new Map(),
        dispatched: new Set(),
      });
      continue;
    }
    const e = executions.get(r.arn);
    if (!e) continue;
    if (r.t === 'run') {
      e.run = r.run;
      e.history = [];
    } else if (r.t === 'ev') {
      if (r.run === e.run) e.history.push(r.ev);
    } else if (r.t === 'memo') e.memo.set(r.key, r.v);
    else if (r.t === 'disp') e.dispatched.add(r.key);
    else if (r.t === 'end')
      Object.assign(e, {
        status: r.status,
        stopDate: r.stopDate,
        output: r.output,
        error: r.error,
        cause: r.cause,
      });
  }
}

/** The records that recreate the running executions (start, run, history, memo, dispatched). */
export function journalRecordsOf(executions: Iterable<Execution>): JournalRecord[] {
  const records: JournalRecord[] = [];
  for (const e of executions) {
    records.push({
      t: 'start',
      arn: e.arn,
      machine: e.machine,
      name: e.name,
      input: e.input,
      startDate: e.startDate,
    });
    records.push({ t: 'run', arn: e.arn, run: e.run });
    for (const ev of e.history) records.push({ t: 'ev', arn: e.arn, run: e.run, ev });
    for (const [key, v] of e.memo) records.push({ t: 'memo', arn: e.arn, key, v });
    for (const key of e.dispatched) records.push({ t: 'disp', arn: e.arn, key });
  }
  return records;
}

/** The archive record of a finished execution. */
export function finishedRecord(e: Execution): FinishedRecord<HistoryEvent> {
  return {
    arn: e.arn,
    machine: e.machine,
    name: e.name,
    input: e.input,
    status: e.status as FinishedStatus,
    startDate: e.startDate,
    stopDate: e.stopDate ?? e.startDate,
    output: e.output,
    error: e.error,
    cause: e.cause,
    history: e.history,
  };
}
