/**
 * One workflow execution as the console shows it, on the payment page and on the execution's own
 * page: its status and timing, the graph of its state machine with the path taken
 * (lambdas/console/graph.ts), and each state it went through with its input, output, error and
 * timing (like the Step Functions console), plus the link to the AWS console in AWS.
 */
import type { DescribeExecutionCommandOutput, HistoryEvent } from '@aws-sdk/client-sfn';
import { executionGraph } from '../graph.ts';
import { html, raw, type Html } from '../html.ts';
import {
  awsConsoleUrl,
  DEFINITIONS,
  describeExecution,
  executionHistory,
  machineOf,
  visitsOf,
  type ExecutionPath,
  type Machine,
} from '../workflows.ts';
import { executionLink, jsonDetails, statusBadge, when } from './parts.ts';

export interface LoadedExecution {
  arn: string;
  machine: Machine | undefined;
  described: DescribeExecutionCommandOutput;
  events: HistoryEvent[];
  path: ExecutionPath;
}

/** The execution with its history, or undefined when Step Functions has none by that ARN. */
export async function loadExecution(arn: string): Promise<LoadedExecution | undefined> {
  const described = await describeExecution(arn);
  if (!described) return undefined;
  const machine = machineOf(arn);
  const events = await executionHistory(arn);
  const path = visitsOf(events, described.status, machine ? DEFINITIONS[machine] : undefined);
  return { arn, machine, described, events, path };
}

/** `RUNNING` shown as `waiting` when the execution waits on a task token. */
export const shownStatus = (status: string | undefined, waiting: boolean | undefined) =>
  status === 'RUNNING' && waiting ? 'waiting (task token)' : (status ?? 'UNKNOWN');

function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.round(ms / 60_000)} min`;
}

/** The execution: summary, graph and states (`headingLevel`: of its title, 2 or 3). */
export function executionView(x: LoadedExecution, headingLevel: 2 | 3 = 3, linkTitle = true): Html {
  const d = x.described;
  const name = d.name ?? x.arn.split(':').pop() ?? x.arn;
  const status = shownStatus(d.status, x.path.waitingForToken);
  const aws = awsConsoleUrl(x.arn);
  const total = d.startDate && d.stopDate ? d.stopDate.getTime() - d.startDate.getTime() : null;
  const title = linkTitle ? executionLink(x.arn, name) : html`${name}`;
  const h = (inner: Html) => (headingLevel === 2 ? html`<h2>${inner}</h2>` : html`<h3>${inner}</h3>`);
  const sub = (text: string) => (headingLevel === 2 ? html`<h3>${text}</h3>` : html`<h4>${text}</h4>`);
  const def = x.machine ? DEFINITIONS[x.machine] : undefined;
  const known = def ? new Set(Object.keys(def.States)) : new Set<string>();
  const graph = def
    ? raw(
        executionGraph(
          def,
          {
            visited: x.path.visits.map((v) => v.name).filter((n) => known.has(n)),
            failed: x.path.failed,
            current: x.path.current,
          },
          { title: `Path of execution ${name} through the ${x.machine} workflow`, id: `g-${name}` },
        ),
      )
    : html`<p>This execution's state machine is not one of paystep's; no graph.</p>`;
  return html`<section class="execution" aria-label="Execution ${name}">
    ${h(html`${x.machine ?? 'workflow'} execution ${title}`)}
    <dl class="facts">
      <dt>Status</dt>
      <dd>${statusBadge(status)}</dd>
      <dt>Started</dt>
      <dd>${when(d.startDate)}</dd>
      <dt>Stopped</dt>
      <dd>${when(d.stopDate)}</dd>
      <dt>Duration</dt>
      <dd>${duration(total)}</dd>
      ${
        x.path.current
          ? html`<dt>Now in</dt>
              <dd>${x.path.current}</dd>`
          : ''
      }
      ${
        d.error
          ? html`<dt>Error</dt>
              <dd>${d.error}${d.cause ? html`: ${d.cause}` : ''}</dd>`
          : ''
      }
      <dt>ARN</dt>
      <dd><code>${x.arn}</code></dd>
      ${
        aws
          ? html`<dt>AWS</dt>
              <dd><a href="${aws}" rel="noopener">Open in the Step Functions console</a></dd>`
          : ''
      }
    </dl>
    <div class="graph">${graph}</div>
    ${sub('States visited')} ${statesTable(x)}
  </section>`;
}

export function statesTable(x: LoadedExecution): Html {
  if (!x.path.visits.length) return html`<p class="empty">No state entered yet.</p>`;
  const failed = new Set(x.path.failed);
  return html`<table class="states">
    <caption>
      States of ${x.described.name ?? 'the execution'} in the order entered, with input, output and timing
    </caption>
    <thead>
      <tr>
        <th scope="col">#</th>
        <th scope="col">State</th>
        <th scope="col">Type</th>
        <th scope="col">Entered</th>
        <th scope="col">Duration</th>
        <th scope="col">Attempts</th>
        <th scope="col">Error</th>
        <th scope="col">Input</th>
        <th scope="col">Output</th>
      </tr>
    </thead>
    <tbody>
      ${x.path.visits.map(
        (v, i) =>
          html`<tr class="${failed.has(v.name) && i === lastIndexOf(x, v.name) ? 'failed' : ''}">
            <td class="num">${i + 1}</td>
            <th scope="row">${v.name}</th>
            <td>${v.type}</td>
            <td>${when(v.entered)}</td>
            <td class="num">
              ${v.exited ? duration(v.durationMs) : x.path.current === v.name ? 'in progress' : '—'}
            </td>
            <td class="num">${v.attempts || '—'}</td>
            <td class="error">
              ${v.error ? html`${v.error}${v.cause ? html`<br /><small>${v.cause.slice(0, 500)}</small>` : ''}` : '—'}
            </td>
            <td>${jsonDetails('input', v.input)}</td>
            <td>${jsonDetails('output', v.output)}</td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}

function lastIndexOf(x: LoadedExecution, name: string): number {
  return x.path.visits.map((v) => v.name).lastIndexOf(name);
}
