/**
 * `npm run bench:cost` — what AWS would bill per payment, and how many payments per second one
 * account-region sustains under default quotas (docs/performance.md "AWS cost and scale").
 *
 * Runs `--payments` payments of a fixed mix through the local runtime (whole platform: webhooks,
 * ledger, merchant events with one webhook endpoint, both processors), then the daily finance
 * reports once, and counts from the bench process, without changing the platform:
 * - Step Functions Standard state transitions: every execution's history (public
 *   ListExecutions/GetExecutionHistory of the local Step Functions), one transition per
 *   `…StateEntered` event plus one per retried task (a task scheduled again within one state);
 * - Lambda requests and GB-seconds: `rt.lambdas.invoke` wrapped, each invocation timed and
 *   multiplied by its function's memory (lib/topology*.ts, default 512 MB);
 * - DynamoDB read/write request units: SDK middleware on the handlers' client asks for
 *   `ReturnConsumedCapacity: TOTAL` (dynalite computes it from item sizes as DynamoDB does:
 *   writes per KB of the larger of old and new item, reads per 4 KB, Query by bytes read); per
 *   partition key too, for the hot-key limit;
 * - SQS, S3 and Step Functions API requests: the same middleware, by command; Lambda's SQS event
 *   source as one ReceiveMessage and one DeleteMessageBatch per batch delivered;
 * - API Gateway requests: gateway invocations (the bench's own status polls, marked with a header,
 *   are excluded from every count);
 * - CloudWatch Logs: the handlers' log lines (Powertools at INFO, as deployed) counted in bytes,
 *   plus estimates for Lambda's START/END/REPORT lines and Step Functions' execution logs
 *   (LogLevel.ALL, no execution data) — estimates are labelled.
 *
 * Results: a table on stdout, progress on stderr, JSON in os.tmpdir() (path printed).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { bar, gitInfo, log, machineInfo, numberFlag, Progress, round, table } from './lib.ts';
import {
  costPerMillion,
  DEFAULT_QUOTAS,
  gbSeconds,
  PRICE_REGION,
  PRICES_READ_ON,
  throughputLimits,
  type Units,
} from './cost-model.ts';

const USAGE = `usage: npm run bench:cost -- [--payments N] [--concurrency N]`;

/** Lambda's own lines per invocation (START, END, REPORT with an X-Ray segment): an estimate. */
const LAMBDA_PLATFORM_LOG_BYTES = 330;
/** One Step Functions execution log record (LogLevel.ALL, includeExecutionData false) beyond its event: an estimate. */
const SFN_LOG_ENVELOPE_BYTES = 220;
/** X-Ray default sampling: 1 request a second, then 5 %; at scale, 5 % of entering requests. */
const XRAY_SAMPLED = 0.05;

/** The mix, in slots of 20 payments (a dispute is added once per run). */
const MIX: { kind: Kind; slots: number }[] = [
  { kind: 'auto', slots: 7 },
  { kind: 'manual', slots: 3 },
  { kind: 'declined', slots: 2 },
  { kind: '3ds', slots: 1 },
  { kind: 'refunded', slots: 2 },
  { kind: 'adyen', slots: 5 },
];
type Kind = 'auto' | 'manual' | 'declined' | '3ds' | 'refunded' | 'adyen' | 'dispute';

function kindOf(i: number): Kind {
  if (i === 0) return 'dispute';
  let slot = i % 20;
  for (const m of MIX) {
    if (slot < m.slots) return m.kind;
    slot -= m.slots;
  }
  return 'auto';
}

interface Ctx {
  fn: string;
  source: string;
  poll: boolean;
}

interface FnStats {
  invocations: number;
  ms: number;
  gbSeconds: number;
  memoryMb: number;
  logBytes: number;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

function sourceOf(event: unknown): string {
  const e = (event ?? {}) as Json;
  if (e.type === 'REQUEST' && e.methodArn) return 'api-authorizer';
  if (e.httpMethod && e.requestContext) return 'api';
  const r = Array.isArray(e.Records) ? (e.Records[0] as Json | undefined) : undefined;
  if (r?.eventSource === 'aws:sqs') return 'sqs';
  if (r?.eventSource === 'aws:dynamodb') return 'stream';
  if (r?.eventSource === 'aws:s3' || r?.s3) return 's3';
  return 'stepfunctions-or-scheduler';
}

function isPoll(event: unknown): boolean {
  const h = ((event ?? {}) as Json).headers as Record<string, string> | undefined;
  if (!h) return false;
  for (const k of Object.keys(h)) if (k.toLowerCase() === 'x-bench-poll') return true;
  return false;
}

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        payments: { type: 'string', default: '300' },
        concurrency: { type: 'string', default: '2' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    log(`bench:cost: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    log(USAGE);
    return 0;
  }
  let payments: number;
  let concurrency: number;
  try {
    payments = numberFlag('payments', values.payments, 20, 100_000, true);
    concurrency = numberFlag('concurrency', values.concurrency, 1, 64, true);
  } catch (err) {
    log(`bench:cost: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }

  // The runtime's own log stays silent; the handlers log at INFO as deployed (counted, not shown).
  process.env.PAYSTEP_LOG_LEVEL = 'silent';
  const { createLogger } = await import('../lib/local/log.ts');
  const logger = createLogger('bench-cost');
  process.env.PAYSTEP_LOG_LEVEL = 'info';
  process.env.PAYSTEP_RISK_VELOCITY_LIMIT = '1000000000';
  process.env.PAYSTEP_CIRCUIT_BREAKER = 'off';
  const { startRuntime } = await import('../lib/local/runtime.ts');
  const { createMerchant } = await import('../lambdas/store/merchants.ts');
  const { clients } = await import('../lambdas/shared/aws.ts');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-bench-cost-'));
  log(`bench:cost: starting the local runtime in ${dir}`);
  const rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 100, scheduler: false, logger });

  // ------------------------------------------------------------------ probes (bench process only)
  const current = new AsyncLocalStorage<Ctx>();
  const fns: Record<string, FnStats> = {};
  const sources: Record<string, number> = {};
  let sqsEsmRequests = 0;
  const lambdas = rt.lambdas as unknown as { invoke: (fn: string, event: unknown) => Promise<unknown> };
  const invoke = lambdas.invoke.bind(rt.lambdas);
  lambdas.invoke = async (fn, event) => {
    let name = fn;
    try {
      name = rt.lambdas.resolve(fn);
    } catch {
      // unknown: the invoker reports it
    }
    const ctx: Ctx = {
      fn: name,
      source: current.getStore()?.source === 'scheduler' ? 'scheduler' : sourceOf(event),
      poll: isPoll(event),
    };
    const t = performance.now();
    try {
      return await current.run(ctx, () => invoke(fn, event));
    } finally {
      const ms = performance.now() - t;
      if (!ctx.poll) {
        const memoryMb = rt.topology.functions[name]?.memoryMb ?? 512;
        const s = (fns[name] ??= { invocations: 0, ms: 0, gbSeconds: 0, memoryMb, logBytes: 0 });
        s.invocations++;
        s.ms += ms;
        s.gbSeconds += gbSeconds(memoryMb, ms);
        sources[ctx.source] = (sources[ctx.source] ?? 0) + 1;
        // Lambda's SQS event source: one ReceiveMessage that got the batch, one DeleteMessageBatch.
        if (ctx.source === 'sqs') sqsEsmRequests += 2;
      }
    }
  };

  // Handler log lines: bytes written while an invocation runs (compact JSON, as in AWS), not shown.
  const countLog = (chunk: unknown): boolean => {
    const ctx = current.getStore();
    if (!ctx) return false;
    if (!ctx.poll) {
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
      let bytes = Buffer.byteLength(text);
      try {
        bytes = Buffer.byteLength(JSON.stringify(JSON.parse(text))) + 1;
      } catch {
        // not one JSON document: count it as written
      }
      const s = fns[ctx.fn];
      if (s) s.logBytes += bytes;
      else pendingLogBytes[ctx.fn] = (pendingLogBytes[ctx.fn] ?? 0) + bytes;
    }
    return true;
  };
  const pendingLogBytes: Record<string, number> = {};
  const outWrite = process.stdout.write.bind(process.stdout);
  const errWrite = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]) =>
    countLog(chunk)
      ? true
      : (outWrite as (...a: unknown[]) => boolean)(chunk, ...rest)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: unknown, ...rest: unknown[]) =>
    countLog(chunk)
      ? true
      : (errWrite as (...a: unknown[]) => boolean)(chunk, ...rest)) as typeof process.stderr.write;

  interface Calls {
    [command: string]: number;
  }
  const calls: Calls = {};
  let rru = 0;
  let wru = 0;
  let conditionalFailures = 0;
  const keyUnits = new Map<string, { r: number; w: number }>();
  type Stack = {
    middlewareStack: {
      add(mw: unknown, opts: { step: string; priority: string; name: string; override?: boolean }): void;
    };
  };
  const pkOf = (input: Json): string | undefined => {
    const k = (input.Key ?? input.Item) as Json | undefined;
    const pk = k?.pk;
    if (pk === undefined) return undefined;
    return `${String(input.TableName)}|${typeof pk === 'object' ? String(pk.S ?? JSON.stringify(pk)) : String(pk)}`;
  };
  for (const [k, make] of Object.entries(clients)) {
    if (k === 'secrets') continue;
    const client = (make as () => unknown)() as Stack;
    client.middlewareStack.add(
      (
        next: (a: { input: Json }) => Promise<{ output: Json }>,
        context: { clientName?: string; commandName?: string },
      ) =>
        async (args: { input: Json }) => {
          const ctx = current.getStore();
          const service = (context.clientName ?? '?')
            .replace(/Client$/, '')
            .replace(/^DynamoDBDocument$/, 'DynamoDB');
          const command = (context.commandName ?? '?').replace(/Command$/, '');
          const counted = ctx !== undefined && !ctx.poll;
          const isDdb = k === 'ddb';
          if (isDdb && counted) args.input.ReturnConsumedCapacity = 'TOTAL';
          if (counted) calls[`${service}.${command}`] = (calls[`${service}.${command}`] ?? 0) + 1;
          const write = /^(Put|Update|Delete|BatchWrite|TransactWrite)/.test(command);
          try {
            const res = await next(args);
            if (isDdb && counted) {
              const cc = res.output.ConsumedCapacity as Json | Json[] | undefined;
              const units = (Array.isArray(cc) ? cc : cc ? [cc] : []).reduce(
                (n, c) => n + Number(c.CapacityUnits ?? 0),
                0,
              );
              if (write) wru += units;
              else rru += units;
              const key = pkOf(args.input);
              if (key) {
                const u = keyUnits.get(key) ?? { r: 0, w: 0 };
                if (write) u.w += units;
                else u.r += units;
                keyUnits.set(key, u);
              }
            }
            return res;
          } catch (err) {
            // A failed condition still consumes write units (at least 1; the item's size is not returned).
            if (isDdb && counted && write && (err as Error).name === 'ConditionalCheckFailedException') {
              conditionalFailures++;
              wru += 1;
            }
            throw err;
          }
        },
      { step: 'initialize', priority: 'high', name: 'paystepBenchCost', override: true },
    );
  }

  // ------------------------------------------------------------------ the platform's API
  const { apiKey } = await createMerchant('Bench cost');
  const hook = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  const hookPort = (hook.address() as { port: number }).port;
  const call = async (method: string, p: string, body?: unknown, poll = false) => {
    const res = await fetch(`${rt.url}${p}`, {
      method,
      headers: {
        authorization: `Bearer ${apiKey}`,
        'content-type': 'application/json',
        ...(method === 'POST' ? { 'idempotency-key': randomUUID() } : {}),
        ...(poll ? { 'x-bench-poll': '1' } : {}),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Json };
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const waitFor = async (what: string, id: string, ok: (p: Json) => boolean, prefix = 'payments') => {
    for (let i = 0; i < 3000; i++) {
      const p = (await call('GET', `/v1/${prefix}/${id}`, undefined, true)).body;
      if (ok(p)) return p;
      await sleep(20);
    }
    throw new Error(`${prefix}/${id}: never ${what}`);
  };
  const statusIs =
    (...s: string[]) =>
    (p: Json) =>
      s.includes(p.status as string);

  const endpoint = await call('POST', '/v1/webhook_endpoints', {
    url: `http://127.0.0.1:${hookPort}/hook`,
    enabled_events: ['*'],
  });
  if (endpoint.status !== 201) throw new Error(`webhook endpoint: ${JSON.stringify(endpoint.body)}`);

  const outcomes: Record<string, Record<string, number>> = {};
  const one = async (i: number) => {
    const kind = kindOf(i);
    const base = { amount: 1000 + (i % 50) * 10, currency: 'usd' };
    const body: Json =
      kind === 'manual'
        ? { ...base, payment_method: 'pm_card_visa', capture_method: 'manual' }
        : kind === 'declined'
          ? { ...base, payment_method: 'pm_card_visa_chargeDeclinedInsufficientFunds' }
          : kind === '3ds'
            ? { ...base, payment_method: 'pm_card_authenticationRequired' }
            : kind === 'dispute'
              ? { ...base, payment_method: 'pm_card_createDispute' }
              : kind === 'adyen'
                ? { ...base, currency: 'eur', payment_method: 'pm_card_visa', processor: 'adyen' }
                : { ...base, payment_method: 'pm_card_visa' };
    const created = await call('POST', '/v1/payments', body);
    if (created.status !== 201)
      throw new Error(`POST /v1/payments (${kind}): ${JSON.stringify(created.body)}`);
    const id = created.body.id as string;
    const settled = [
      'captured',
      'failed',
      'canceled',
      'authorized',
      'requires_action',
      'refunded',
      'disputed',
    ];
    let p = await waitFor('decided', id, statusIs(...settled));
    if (kind === '3ds') {
      const res = await fetch(
        `${rt.endpoints.stripe}/_sim/payment_intents/${p.processor_reference}/authenticate`,
        {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ outcome: 'succeed' }),
        },
      );
      if (!res.ok) throw new Error(`3DS authenticate: ${res.status} ${await res.text()}`);
      p = await waitFor('captured after 3DS', id, statusIs('captured', 'failed'));
    }
    if (kind === 'manual') {
      for (let t = 0; ; t++) {
        const c = await call('POST', `/v1/payments/${id}/capture`, {});
        if (c.status === 200) break;
        if (t > 200) throw new Error(`capture: ${JSON.stringify(c.body)}`);
        await sleep(20);
      }
      p = await waitFor('captured', id, statusIs('captured'));
    }
    if (kind === 'refunded') {
      const r = await call('POST', '/v1/refunds', { payment: id, amount: 400 });
      if (r.status >= 300) throw new Error(`refund: ${JSON.stringify(r.body)}`);
      await waitFor('refunded', r.body.id as string, statusIs('succeeded', 'failed'), 'refunds');
      p = await waitFor('partially refunded', id, statusIs('partially_refunded', 'refunded'));
    }
    if (kind === 'dispute') {
      p = await waitFor('disputed', id, (x) => x.dispute?.status === 'needs_response');
      const a = await call('POST', `/v1/disputes/${p.dispute.id}/accept`, {});
      if (a.status !== 200) throw new Error(`dispute accept: ${JSON.stringify(a.body)}`);
      p = (await call('GET', `/v1/payments/${id}`, undefined, true)).body;
    }
    const o = (outcomes[kind] ??= {});
    o[p.status] = (o[p.status] ?? 0) + 1;
  };

  const started = Date.now();
  const progress = new Progress();
  let next = 0;
  let done = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < payments) {
        const i = next++;
        await one(i);
        done++;
        if (done % 10 === 0 || done === payments)
          progress.update(`payments ${bar(done / payments)} ${done}/${payments}`);
      }
    }),
  );
  progress.done();
  const paymentSeconds = (Date.now() - started) / 1000;
  log('bench:cost: waiting for the stream, queues and workflows to drain…');
  // Executions that wait for days (a refund's poll fallback, a dispute's deadline) keep running:
  // drain the stream and queues, and wait until the running count stops falling.
  const quiesce = async () => {
    let last = -1;
    let stable = 0;
    for (let i = 0; i < 1200 && stable < 15; i++) {
      await rt.dynamo.drain();
      await rt.queues.drain({ timeoutMs: 30_000 });
      const n = rt.stepFunctions.runningCount();
      stable = n === last ? stable + 1 : 0;
      last = n;
      await sleep(200);
    }
  };
  await quiesce();
  const stillRunning = rt.stepFunctions.runningCount();

  // The daily finance reports over the day these payments were made, as the scheduler fires them.
  log('bench:cost: the daily finance reports…');
  const today = new Date().toISOString().slice(0, 10);
  await current.run({ fn: '(scheduler)', source: 'scheduler', poll: false }, () =>
    lambdas.invoke('finance-reports', { date: today }),
  );
  await quiesce();

  // ------------------------------------------------------------------ Step Functions histories
  const sfn = rt.stepFunctions;
  const running: Record<string, number> = {};
  const machines: Record<
    string,
    { executions: number; transitions: number; retries: number; logBytes: number }
  > = {};
  for (const name of sfn.machineNames()) {
    const arn = sfn.stateMachineArn(name);
    let token: string | undefined;
    do {
      const page = sfn.listExecutions({ stateMachineArn: arn, maxResults: 1000, nextToken: token });
      for (const ex of page.executions) {
        const m = (machines[name] ??= { executions: 0, transitions: 0, retries: 0, logBytes: 0 });
        m.executions++;
        if (ex.status === 'RUNNING') running[name] = (running[name] ?? 0) + 1;
        let hToken: string | undefined;
        let scheduledInState = 0;
        do {
          const h = sfn.getExecutionHistory({
            executionArn: ex.executionArn,
            maxResults: 1000,
            nextToken: hToken,
          });
          for (const ev of h.events) {
            if (ev.type.endsWith('StateEntered')) {
              m.transitions++;
              scheduledInState = 0;
            } else if (/^(TaskScheduled|LambdaFunctionScheduled|ActivityScheduled)$/.test(ev.type)) {
              if (++scheduledInState > 1) m.retries++;
            }
            const { input, output, ...rest } = ev as Json;
            void input;
            void output;
            m.logBytes += Buffer.byteLength(JSON.stringify(rest)) + SFN_LOG_ENVELOPE_BYTES;
          }
          hToken = h.nextToken;
        } while (hToken);
      }
      token = page.nextToken;
    } while (token);
  }
  const streams = rt.dynamo.streamStats();
  const streamBatches = streams.reduce((n, x) => n + x.batchesDelivered, 0);

  process.stdout.write = outWrite as typeof process.stdout.write;
  process.stderr.write = errWrite as typeof process.stderr.write;
  for (const [fn, b] of Object.entries(pendingLogBytes)) if (fns[fn]) fns[fn].logBytes += b;
  await rt.stop();
  hook.close();
  fs.rmSync(dir, { recursive: true, force: true });

  // ------------------------------------------------------------------ units per payment
  const sum = (f: (s: FnStats) => number) => Object.values(fns).reduce((n, s) => n + f(s), 0);
  const m = Object.values(machines);
  const transitions = m.reduce((n, x) => n + x.transitions + x.retries, 0);
  const executions = m.reduce((n, x) => n + x.executions, 0);
  const callsOf = (re: RegExp) =>
    Object.entries(calls)
      .filter(([k]) => re.test(k))
      .reduce((n, [, v]) => n + v, 0);
  const invocations = sum((s) => s.invocations);
  const handlerLogBytes = sum((s) => s.logBytes);
  const lambdaPlatformLogBytes = invocations * LAMBDA_PLATFORM_LOG_BYTES;
  const sfnLogBytes = m.reduce((n, x) => n + x.logBytes, 0);
  const apiRequests = sources.api ?? 0;
  const schedulerInvocations = sources.scheduler ?? 0;
  const per = (v: number) => v / payments;
  const units: Units = {
    sfnTransitions: per(transitions),
    lambdaRequests: per(invocations),
    lambdaGbSeconds: per(sum((s) => s.gbSeconds)),
    ddbReadUnits: per(rru),
    ddbWriteUnits: per(wru),
    ddbStreamReadRequests: per(streamBatches),
    sqsRequests: per(callsOf(/^SQS\./) + sqsEsmRequests),
    s3WriteRequests: per(callsOf(/^S3\.(Put|Copy|List|CreateMultipart|UploadPart|CompleteMultipart|Delete)/)),
    s3ReadRequests: per(callsOf(/^S3\.(Get|Head)/)),
    schedulerInvocations: per(schedulerInvocations),
    logBytes: per(handlerLogBytes + lambdaPlatformLogBytes + sfnLogBytes),
    apiRequests: per(apiRequests),
    xrayTraces: per((apiRequests + schedulerInvocations) * XRAY_SAMPLED),
  };
  const cost = costPerMillion(units);
  let hottest: { key: string; r: number; w: number } = { key: '-', r: 0, w: 0 };
  let hottestRead: { key: string; r: number; w: number } = { key: '-', r: 0, w: 0 };
  for (const [key, u] of keyUnits) {
    if (u.w > hottest.w) hottest = { key, ...u };
    if (u.r > hottestRead.r) hottestRead = { key, ...u };
  }
  const limits = throughputLimits({
    sfnStartExecutions: per(executions),
    sfnTransitions: units.sfnTransitions,
    sfnTaskTokenCalls: per(callsOf(/^SFN\.SendTask/)),
    lambdaSeconds: per(sum((s) => s.ms) / 1000),
    apiRequests: per(apiRequests),
    ddbWriteUnits: units.ddbWriteUnits,
    ddbReadUnits: units.ddbReadUnits,
    hottestKeyWriteUnits: per(hottest.w),
    hottestKeyReadUnits: per(hottestRead.r),
  });

  // ------------------------------------------------------------------ output
  const machine = machineInfo();
  const usd = (v: number) => (v >= 100 ? `$${v.toFixed(0)}` : `$${v.toFixed(2)}`);
  const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(2) : v.toPrecision(3));
  console.log(
    `\nAWS cost per 1 million payments (${PRICE_REGION}, on-demand prices read ${PRICES_READ_ON}; ${payments} payments measured)\n`,
  );
  console.log(
    table([
      ['service', 'unit', 'per payment', '$ per 1M payments', 'share'],
      ...cost.lines.map((l) => [
        l.service,
        l.unit,
        fmt(l.perPayment),
        usd(l.usdPerMillion),
        `${(l.share * 100).toFixed(1)} %`,
      ]),
      ['total', '', '', usd(cost.totalUsdPerMillion), '100 %'],
    ]),
  );
  console.log('\nStep Functions (Standard) per state machine\n');
  console.log(
    table([
      ['state machine', 'executions', 'transitions', 'retries', 'per payment'],
      ...Object.entries(machines)
        .sort((a, b) => b[1].transitions - a[1].transitions)
        .map(([n, x]) => [
          n,
          x.executions,
          x.transitions,
          x.retries,
          fmt((x.transitions + x.retries) / payments),
        ]),
    ]),
  );
  console.log('\nLambda per function\n');
  console.log(
    table([
      [
        'function',
        'MB',
        'invocations',
        'per payment',
        'mean ms',
        'GB-s per payment',
        'log bytes per payment',
      ],
      ...Object.entries(fns)
        .sort((a, b) => b[1].gbSeconds - a[1].gbSeconds)
        .map(([n, s]) => [
          n,
          s.memoryMb,
          s.invocations,
          fmt(s.invocations / payments),
          (s.ms / s.invocations).toFixed(1),
          fmt(s.gbSeconds / payments),
          fmt(s.logBytes / payments),
        ]),
    ]),
  );
  console.log(`\nHighest sustained payments/s per account-region (default quotas, ${PRICE_REGION})\n`);
  console.log(
    table([
      ['quota', 'value', 'per payment', 'payments/s', 'to raise'],
      ...limits.map((l) => [
        l.quota,
        l.value,
        fmt(l.perPayment),
        Number.isFinite(l.paymentsPerSecond) ? l.paymentsPerSecond.toFixed(0) : '∞',
        l.raise,
      ]),
    ]),
  );
  console.log(
    `\nhottest partition keys: writes ${hottest.key} (${fmt(hottest.w / payments)} WRU per payment), reads ${hottestRead.key} (${fmt(hottestRead.r / payments)} RRU per payment)`,
  );
  console.log(
    `binds first: ${limits[0]!.quota} at ${limits[0]!.paymentsPerSecond.toFixed(0)} payments/s; next: ${limits[1]!.quota} at ${limits[1]!.paymentsPerSecond.toFixed(0)}`,
  );

  const file = path.join(os.tmpdir(), `paystep-bench-cost-${Date.now()}.json`);
  fs.writeFileSync(
    file,
    JSON.stringify(
      {
        machine,
        git: gitInfo(),
        load_average: os.loadavg(),
        args: { payments, concurrency },
        payment_seconds: round(paymentSeconds, 1),
        outcomes,
        still_running_executions: stillRunning,
        running_at_end_by_machine: running,
        units_per_payment: units,
        cost,
        limits,
        machines,
        lambda: fns,
        invocations_by_source: sources,
        aws_calls: calls,
        ddb: {
          read_units: rru,
          write_units: wru,
          conditional_failures_counted_as_1_wru: conditionalFailures,
          hottest_write_key: hottest,
          hottest_read_key: hottestRead,
        },
        logs: {
          handler_bytes: handlerLogBytes,
          lambda_platform_bytes_estimated: lambdaPlatformLogBytes,
          sfn_bytes_estimated: sfnLogBytes,
        },
        stream_batches: streamBatches,
        quotas: DEFAULT_QUOTAS,
      },
      null,
      2,
    ),
  );
  log(`results: ${file}`);
  return 0;
}
