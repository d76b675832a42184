/**
 * The workflow definitions (statemachines/*.asl.json) as both runtimes load them (lib/asl-definition.ts):
 * named retry policies resolve and are never copied inline, the expanded definitions are valid ASL,
 * invalid task input is never retried, and no Choice ends an outcome it does not know as a success
 * (docs/states.md, "Workflows fail safe"). The fail-safe paths are also run with aws-local-stepfunctions.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StateMachine } from 'aws-local-stepfunctions';
import type { StateMachineDefinition } from 'aws-local-stepfunctions';
import {
  deployedAslText,
  expandRetryReferences,
  loadRetryPolicies,
  parseRetryPolicies,
  retryReference,
  substitute,
  RETRY_POLICIES_FILE,
  type AslDefinition,
  type AslState,
  type Json,
  type Retrier,
} from '../../lib/asl-definition.ts';
import { compileDefinition } from '../../lib/local/asl.ts';
import { LocalStepFunctions } from '../../lib/local/stepfunctions.ts';
import { topology } from '../../lib/topology.ts';
import { PAYMENT_STATUSES } from '../../lambdas/domain/payment.ts';
import { DEFAULT_CASCADE } from '../../lambdas/domain/routing.ts';
import { InvalidTaskInput } from '../../lambdas/shared/task-input.ts';

const DIR = path.dirname(RETRY_POLICIES_FILE);
const FILES = fs
  .readdirSync(DIR)
  .filter((f) => f.endsWith('.asl.json'))
  .sort();
const raw = (file: string) => JSON.parse(fs.readFileSync(path.join(DIR, file), 'utf8')) as AslDefinition;
const policies = loadRetryPolicies();
const expanded = (file: string) =>
  JSON.parse(deployedAslText(fs.readFileSync(path.join(DIR, file), 'utf8'), file)) as AslDefinition;
/** Every placeholder filled with a well-formed ARN, as a runtime would. */
const runnable = (file: string) =>
  JSON.parse(
    fs
      .readFileSync(path.join(DIR, file), 'utf8')
      .replace(/\$\{([A-Za-z0-9_]+)\}/g, 'arn:aws:lambda:us-east-1:123456789012:function:$1'),
  ) as AslDefinition;

/** Every state of a definition, with those of Parallel branches and Map item processors. */
function allStates(def: { States: Record<string, AslState> }): [string, AslState][] {
  return Object.entries(def.States).flatMap(([name, s]) => {
    const nested = [
      ...(Array.isArray(s.Branches) ? (s.Branches as unknown as AslDefinition[]) : []),
      ...(s.ItemProcessor ? [s.ItemProcessor as unknown as AslDefinition] : []),
    ];
    return [[name, s] as [string, AslState], ...nested.flatMap(allStates)];
  });
}

test('the ASL files are the ones the topology deploys', () => {
  expect(FILES.map((f) => `statemachines/${f}`)).toEqual(
    Object.values(topology.stateMachines)
      .map((m) => m.file)
      .sort(),
  );
});

describe('named retry policies', () => {
  test.each(FILES)('%s: every Retry is a policy reference that resolves', (file) => {
    for (const [name, state] of allStates(raw(file))) {
      if (state.Type !== 'Task' && state.Retry === undefined) continue;
      expect({ state: name, ref: retryReference(state.Retry) }).toEqual({
        state: name,
        ref: expect.any(String),
      });
      expect(policies[retryReference(state.Retry)!]).toBeDefined();
    }
    expect(() => expanded(file)).not.toThrow();
  });

  test.each(FILES)('%s: no inline Retry block duplicates a named policy or one of its retriers', (file) => {
    const named = Object.values(policies);
    const namedRetriers = named.flat();
    for (const [name, state] of allStates(raw(file))) {
      if (!Array.isArray(state.Retry)) continue;
      const inline = state.Retry.filter((r) => retryReference(r) === undefined);
      const expandedRetry = expandRetryReferences(
        { StartAt: name, States: { [name]: state } },
        policies,
        file,
      ).States[name]!.Retry;
      for (const p of named)
        expect({ state: name, retry: expandedRetry }).not.toEqual({ state: name, retry: p });
      for (const r of inline) expect(namedRetriers).not.toContainEqual(r);
    }
  });

  test('every policy is used, and the file holds each retrier once', () => {
    const doc = JSON.parse(fs.readFileSync(RETRY_POLICIES_FILE, 'utf8')) as {
      Policies: Record<string, Json[]>;
    };
    const referenced = new Set<string>();
    for (const items of Object.values(doc.Policies))
      for (const i of items) if (retryReference(i)) referenced.add(retryReference(i)!);
    for (const file of FILES)
      for (const [, s] of allStates(raw(file)))
        if (retryReference(s.Retry)) referenced.add(retryReference(s.Retry)!);
    expect(Object.keys(doc.Policies).filter((p) => !referenced.has(p))).toEqual([]);
    const literal = Object.values(doc.Policies)
      .flat()
      .filter((i) => typeof i === 'object')
      .map((i) => JSON.stringify(i));
    expect(new Set(literal).size).toBe(literal.length);
  });

  test.each(FILES)(
    '%s: InvalidTaskInput is never retried, and no wildcard retrier comes before it',
    (file) => {
      for (const [name, state] of allStates(expanded(file))) {
        if (state.Type !== 'Task') continue;
        const retry = state.Retry as unknown as Retrier[];
        const never = retry.findIndex((r) => r.ErrorEquals.includes('InvalidTaskInput'));
        expect({ state: name, never, maxAttempts: retry[never]?.MaxAttempts }).toEqual({
          state: name,
          never: 0,
          maxAttempts: 0,
        });
        const wildcards = retry.filter((r) =>
          r.ErrorEquals.some((e) => e === 'States.ALL' || e === 'States.TaskFailed'),
        );
        for (const w of wildcards) expect(w).toBe(retry.at(-1));
      }
    },
  );

  test('references expand in order, as copies; unknown names and cycles are refused with their place', () => {
    const p = parseRetryPolicies({
      Policies: {
        A: [{ ErrorEquals: ['X'], MaxAttempts: 0 }],
        B: ['@retry:A', { ErrorEquals: ['States.ALL'], MaxAttempts: 2 }],
      },
    });
    expect(p.B).toEqual([
      { ErrorEquals: ['X'], MaxAttempts: 0 },
      { ErrorEquals: ['States.ALL'], MaxAttempts: 2 },
    ]);
    const def: AslDefinition = {
      StartAt: 'One',
      States: {
        One: { Type: 'Task', Resource: 'r', Retry: '@retry:B', Next: 'Many' },
        Many: {
          Type: 'Map',
          ItemProcessor: {
            StartAt: 'Two',
            States: { Two: { Type: 'Task', Resource: 'r', Retry: ['@retry:A'], End: true } },
          },
          End: true,
        },
      },
    };
    const out = expandRetryReferences(def, p, 'x.asl.json');
    expect(out.States.One!.Retry).toEqual(p.B);
    const inner = (out.States.Many!.ItemProcessor as unknown as AslDefinition).States.Two!;
    expect(inner.Retry).toEqual(p.A);
    // Copies: scaling one state's intervals locally cannot touch another's.
    expect((out.States.One!.Retry as Json[])[0]).not.toBe((inner.Retry as Json[])[0]);
    expect(def.States.One!.Retry).toBe('@retry:B');

    expect(() =>
      expandRetryReferences(
        { StartAt: 'S', States: { S: { Type: 'Task', Resource: 'r', Retry: '@retry:Nope', End: true } } },
        p,
        'x.asl.json',
      ),
    ).toThrow(/x\.asl\.json: state "S": unknown retry policy "Nope"/);
    expect(() => parseRetryPolicies({ Policies: { A: ['@retry:B'], B: ['@retry:A'] } })).toThrow(
      /cycle A → B → A/,
    );
    expect(() => parseRetryPolicies({ Policies: { A: ['@retry:Missing'] } })).toThrow(
      /unknown retry policy "Missing"/,
    );
    expect(() => parseRetryPolicies({ Policies: { A: [{ MaxAttempts: 1 }] } })).toThrow(/neither a retrier/);
  });
});

describe('expanded definitions are valid ASL in both runtimes', () => {
  test.each(FILES)(
    '%s: aws-local-stepfunctions accepts it, and it compiles for the local runtime',
    (file) => {
      const def = runnable(file);
      const text = JSON.stringify(def);
      const deployed = JSON.parse(deployedAslText(text, file)) as AslDefinition;
      expect(() => new StateMachine(deployed as unknown as StateMachineDefinition)).not.toThrow();
      expect(() => compileDefinition(deployed, 86400)).not.toThrow();
      // Unexpanded, the same file is not valid ASL: the loader is what both runtimes need.
      expect(() => new StateMachine(def as unknown as StateMachineDefinition)).toThrow();
    },
  );

  test('the local runtime loads exactly what the CDK stack deploys, placeholders filled', () => {
    for (const file of FILES) {
      const text = fs.readFileSync(path.join(DIR, file), 'utf8');
      const values = Object.fromEntries(
        [...text.matchAll(/\$\{([A-Za-z0-9_]+)\}/g)].map((m) => [
          m[1]!,
          `arn:aws:lambda:local:0:function:${m[1]}`,
        ]),
      );
      const local = JSON.parse(substitute(text, values, file));
      const deployed = JSON.parse(
        deployedAslText(text, file).replace(/\$\{([A-Za-z0-9_]+)\}/g, (_, n: string) => values[n]!),
      );
      expect(local).toEqual(deployed);
    }
  });

  test('the local Step Functions service validates and compiles every definition', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'asl-'));
    try {
      const sfn = new LocalStepFunctions({
        dataDir: dir,
        machines: FILES.map((file) => ({
          name: file.replace('.asl.json', ''),
          type: 'STANDARD' as const,
          definition: JSON.parse(
            substitute(
              fs.readFileSync(path.join(DIR, file), 'utf8'),
              new Proxy({}, { get: (_, k) => `arn:aws:lambda:local:0:function:${String(k)}` }),
              file,
            ),
          ) as AslDefinition,
        })),
        invokeFunction: async () => null,
      });
      expect(sfn.machineNames().sort()).toEqual(FILES.map((f) => f.replace('.asl.json', '')));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('workflows fail safe', () => {
  /** The states reached from `start` by Next (Catch transitions are the steps' own failure paths). */
  function pathFrom(states: Record<string, AslState>, start: string): string[] {
    const seen: string[] = [];
    for (let s: string | undefined = start; s !== undefined && !seen.includes(s);) {
      seen.push(s);
      const st: AslState = states[s]!;
      s = st.Type === 'Task' || st.Type === 'Pass' ? (st.Next as string | undefined) : undefined;
    }
    return seen;
  }

  test.each(FILES)('%s: the Default of every Choice records the outcome, then fails', (file) => {
    const def = raw(file);
    for (const [name, state] of allStates(def)) {
      if (state.Type !== 'Choice') continue;
      expect({ choice: name, default: typeof state.Default }).toEqual({ choice: name, default: 'string' });
      const route = pathFrom(def.States, state.Default as string);
      const types = route.map((s) => def.States[s]!.Type);
      expect({ choice: name, route, types }).toEqual({
        choice: name,
        route,
        types: [...types.slice(0, -1).map(() => 'Task'), 'Fail'],
      });
      expect(types.length).toBeGreaterThanOrEqual(2); // a task marks the object first
      const recorded = def.States[route[0]!]!;
      expect(route[0]).toMatch(/^Record that /);
      expect(JSON.stringify(recorded.Parameters)).toMatch(/UnexpectedOutcome|unexpected_state/);
      expect(def.States[route.at(-1)!]).toMatchObject({ Type: 'Fail', Error: 'UnexpectedOutcome' });
    }
  });

  test('"Capture now or later?" names every payment status it may meet; only the unfinished ones are unexpected', () => {
    const choice = raw('payment.asl.json').States['Capture now or later?']!;
    const named = JSON.stringify(choice.Choices);
    const unnamed = PAYMENT_STATUSES.filter((s) => !named.includes(`"${s}"`));
    expect(unnamed.sort()).toEqual(['pending_review', 'processing']);
  });

  test('no state is left unreachable (AWS refuses such definitions)', () => {
    for (const file of FILES) {
      const def = raw(file);
      const targets = new Set<string>([def.StartAt]);
      for (const [, s] of allStates(def)) {
        for (const k of ['Next', 'Default']) if (typeof s[k] === 'string') targets.add(s[k] as string);
        for (const list of [s.Choices, s.Catch])
          if (Array.isArray(list))
            for (const c of list as Record<string, Json>[]) targets.add(c.Next as string);
      }
      for (const name of Object.keys(def.States))
        expect({ file, name, reached: targets.has(name) }).toEqual({ file, name, reached: true });
    }
  });
});

describe('fail-safe paths, run', () => {
  type Handlers = Record<string, (input: unknown) => unknown>;
  const run = async (file: string, input: Record<string, unknown>, handlers: Handlers) => {
    const calls: { state: string; payload: Record<string, unknown> }[] = [];
    const def = JSON.parse(
      substitute(
        fs.readFileSync(path.join(DIR, file), 'utf8'),
        new Proxy({}, { get: (_, k) => `arn:aws:lambda:us-east-1:123456789012:function:${String(k)}` }),
        file,
      ),
    );
    const sm = new StateMachine(def, { validationOptions: { checkArn: false } });
    const taskResourceLocalHandlers: Record<string, (input: Json) => Promise<Json>> = {};
    const retryIntervalOverrides: Record<string, number> = {};
    for (const [name, s] of allStates(def)) {
      if (s.Type !== 'Task') continue;
      retryIntervalOverrides[name] = 0;
      taskResourceLocalHandlers[name] = async (params) => {
        const payload = (params as { Payload: Record<string, unknown> }).Payload;
        calls.push({ state: name, payload });
        const h = handlers[name];
        if (!h) throw new Error(`no handler for "${name}" in this test`);
        return { Payload: (await h(payload)) as Json };
      };
    }
    const execution = sm.run(input as never, {
      overrides: { taskResourceLocalHandlers, retryIntervalOverrides },
    });
    const outcome = await execution.result.then(
      (output) => ({ status: 'SUCCEEDED', output, error: undefined as string | undefined }),
      (err: Error) => ({
        status: 'FAILED',
        output: undefined,
        error: (err.cause as Error | undefined)?.name,
      }),
    );
    return { ...outcome, calls, states: calls.map((c) => c.state) };
  };

  test('payment: an authorization outcome nobody knows is flagged and fails (it used to succeed)', async () => {
    const r = await run(
      'payment.asl.json',
      { payment_id: 'pay_1' },
      {
        'Screen for risk': () => ({ decision: 'allow' }),
        'Choose a processor': () => ({
          processor: 'stripe',
          processors: ['stripe'],
          cascade: DEFAULT_CASCADE,
        }),
        'Authorize with processor': () => ({ outcome: 'pending_something_new' }),
        'Record that the outcome is unexpected': () => ({ needs_attention: true }),
      },
    );
    expect(r).toMatchObject({ status: 'FAILED', error: 'UnexpectedOutcome' });
    expect(r.states).toEqual([
      'Screen for risk',
      'Choose a processor',
      'Authorize with processor',
      'Record that the outcome is unexpected',
    ]);
    expect(r.calls.at(-1)!.payload).toMatchObject({
      payment_id: 'pay_1',
      error: { Error: 'UnexpectedOutcome' },
      workflow_state: { auth: { outcome: 'pending_something_new' } },
    });
  });

  test('payment: an unknown risk decision is not taken for "allow"', async () => {
    const r = await run(
      'payment.asl.json',
      { payment_id: 'pay_1' },
      {
        'Screen for risk': () => ({ decision: 'block' }),
        'Record that the outcome is unexpected': () => ({}),
      },
    );
    expect(r).toMatchObject({ status: 'FAILED', error: 'UnexpectedOutcome' });
    expect(r.states).not.toContain('Choose a processor');
  });

  test('payment: InvalidTaskInput is not retried and goes to "Flag for attention", not to the outcome check', async () => {
    const r = await run(
      'payment.asl.json',
      { payment_id: 'pay_1' },
      {
        'Screen for risk': () => ({ decision: 'allow' }),
        'Choose a processor': () => ({
          processor: 'stripe',
          processors: ['stripe'],
          cascade: DEFAULT_CASCADE,
        }),
        'Authorize with processor': () => {
          throw new InvalidTaskInput('payment-authorize', [{ path: 'processor', message: 'Required' }]);
        },
        'Flag for attention': () => ({}),
      },
    );
    expect(r).toMatchObject({ status: 'FAILED', error: 'NeedsAttention' });
    expect(r.states.filter((s) => s === 'Authorize with processor')).toHaveLength(1);
    expect(r.states).not.toContain('Check the outcome with the processor');
    expect(r.calls.at(-1)!.payload).toMatchObject({ error: { Error: 'InvalidTaskInput' } });
  });

  test('payment: a technical error is still retried', async () => {
    let n = 0;
    const r = await run(
      'payment.asl.json',
      { payment_id: 'pay_1' },
      {
        'Screen for risk': () => {
          if (++n < 3) throw Object.assign(new Error('boom'), { name: 'Lambda.ServiceException' });
          return { decision: 'allow' };
        },
        'Choose a processor': () => ({
          processor: 'stripe',
          processors: ['stripe'],
          cascade: DEFAULT_CASCADE,
        }),
        'Authorize with processor': () => ({ outcome: 'captured' }),
      },
    );
    expect(r).toMatchObject({ status: 'SUCCEEDED' });
    expect(n).toBe(3);
  });

  test('refund: an unknown outcome neither settles nor releases the reservation', async () => {
    const r = await run(
      'refund.asl.json',
      { refund_id: 're_1' },
      {
        'Refund with processor': () => ({ status: 'reversed', failure_reason: null }),
        'Record that the refund outcome is unexpected': () => ({ status: 'pending', needs_attention: true }),
      },
    );
    expect(r).toMatchObject({ status: 'FAILED', error: 'UnexpectedOutcome' });
    expect(r.states).toEqual(['Refund with processor', 'Record that the refund outcome is unexpected']);
    expect(r.calls.at(-1)!.payload).toMatchObject({
      refund_id: 're_1',
      needs_attention: { Error: 'UnexpectedOutcome' },
    });
  });

  test('refund: invalid input is flagged, not released', async () => {
    const r = await run(
      'refund.asl.json',
      { refund_id: 're_1' },
      {
        'Refund with processor': () => {
          throw new InvalidTaskInput('refund-submit', [{ path: 'refund_id', message: 'expected a re_… id' }]);
        },
        'Flag the refund for attention': () => ({ status: 'pending', needs_attention: true }),
      },
    );
    expect(r).toMatchObject({ status: 'FAILED', error: 'NeedsAttention' });
    expect(r.states).toEqual(['Refund with processor', 'Flag the refund for attention']);
  });

  test('dispute: a summary of an unknown kind is escalated to the sweeper, not treated as a chargeback', async () => {
    const summary = { dispute_id: 'dp_1', phase: 'open', kind: 'retrieval', responded: false, seq: 1 };
    const r = await run(
      'dispute.asl.json',
      { dispute_id: 'dp_1' },
      {
        'Record the dispute': () => summary,
        'Record that the dispute state is unexpected': () => summary,
      },
    );
    expect(r).toMatchObject({ status: 'FAILED', error: 'UnexpectedOutcome' });
    expect(r.calls.at(-1)!.payload).toEqual({
      dispute_id: 'dp_1',
      action: 'escalate',
      reason: 'unexpected_state',
    });
  });
});
