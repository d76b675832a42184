/**
 * Incident mode through the ops API on the local runtime (docs/api.md "Ops API"): an ops key from
 * `paystep ops key create`, refused on merchant routes as a merchant key is on ops routes; an
 * incident declared on Stripe, payments that reroute to Adyen, refusals (400 naming the field,
 * 404, 409 saying why), the resolution writing the incident report to the reports bucket with the
 * right counts, `paystep incident report`, and every merchant told `processor.incident.opened` and
 * `.resolved` once, even when the stream delivers a record twice.
 */
import fs from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { createMerchant } from '../../lambdas/store/merchants.ts';
import { forgetHealthCache } from '../../lambdas/processors/health.ts';
import { getText } from '../../lambdas/reports/storage.ts';
import { CsvReader } from '../../lambdas/reports/csv.ts';
import { collectIncidentReport } from '../../lambdas/incidents/report-writer.ts';
import type { Incident } from '../../lambdas/domain/incidents.ts';
import { verifyPaystepSignature } from '../../lambdas/events/signature.ts';
import type { StreamChange } from '../../lambdas/stream/consumers.ts';
import { apiClient, until, type Json } from '../fixtures/api.ts';
import { runCli } from '../fixtures/cli.ts';

let rt: Runtime;
let dir: string;
let server: Server;
let hooks: string;
const received: { path: string; body: Json; raw: string; signature: string }[] = [];
let merchantA: ReturnType<typeof apiClient>;
let merchantB: ReturnType<typeof apiClient>;
let ops: ReturnType<typeof apiClient>;
let merchantKey: string;
let opsKey: string;
const secrets: Record<string, string> = {};

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      received.push({
        path: req.url ?? '',
        body: JSON.parse(raw) as Json,
        raw,
        signature: String(req.headers['paystep-signature'] ?? ''),
      });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  hooks = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-incident-ops-'));
  rt = await startRuntime({ dataDir: dir, port: 0, timeScale: 1000, scheduler: false });
  const a = await createMerchant('Acme');
  merchantKey = a.apiKey;
  merchantA = apiClient(() => rt.url!, a.apiKey);
  merchantB = apiClient(() => rt.url!, (await createMerchant('Other')).apiKey);
  for (const [name, call, events] of [
    ['a', merchantA, ['processor.*']],
    ['b', merchantB, ['processor.incident.opened', 'processor.incident.resolved']],
  ] as const) {
    const r = await call('POST', '/v1/webhook_endpoints', {
      url: `${hooks}/${name}`,
      enabled_events: events,
    });
    expect(r.status).toBe(201);
    secrets[`/${name}`] = r.body.secret as string;
  }
});

afterAll(async () => {
  await rt?.stop();
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('paystep ops key create prints a key once; ops keys and merchant keys are refused on each other’s routes', async () => {
  const created = await runCli(dir, 'ops', 'key', 'create', '--name', 'alice');
  expect(created.code).toBe(0);
  const out = JSON.parse(created.stdout) as Json;
  expect(out).toMatchObject({ object: 'ops_key', name: 'alice', key: expect.stringMatching(/^ops_/) });
  opsKey = out.key as string;
  ops = apiClient(() => rt.url!, opsKey);
  // Listed without the key; a second key of the same name is refused.
  const list = await runCli(dir, 'ops', 'key', 'list');
  expect(list.stdout).not.toContain(opsKey);
  expect(JSON.parse(list.stdout)).toMatchObject({
    data: [{ name: 'alice', key_prefix: opsKey.slice(0, 8) }],
  });
  expect(await runCli(dir, 'ops', 'key', 'create', '--name', 'alice')).toMatchObject({
    code: 2,
    error: "an ops key named 'alice' exists: revoke it first",
  });

  expect((await ops('GET', '/ops/v1/incidents')).status).toBe(200);
  const merchantOnOps = await merchantA('GET', '/ops/v1/incidents');
  expect(merchantOnOps.status).toBe(401);
  expect(merchantOnOps.body.error).toMatchObject({ type: 'authentication_error' });
  expect((await merchantA('POST', '/ops/v1/incidents', { processor: 'stripe', reason: 'x' })).status).toBe(
    401,
  );
  expect((await ops('GET', '/v1/payments')).status).toBe(401);
  expect(
    (await ops('POST', '/v1/payments', { amount: 100, currency: 'usd', payment_method: 'pm_card_visa' }))
      .status,
  ).toBe(401);
  expect((await apiClient(() => rt.url!, `ops_${'x'.repeat(40)}`)('GET', '/ops/v1/incidents')).status).toBe(
    401,
  );
  expect((await apiClient(() => rt.url!, merchantKey)('GET', '/v1/payments')).status).toBe(200);

  // A revoked key stops working (once the gateway's cache of it expires: a fresh key here).
  const temp = JSON.parse((await runCli(dir, 'ops', 'key', 'create', '--name', 'temp')).stdout) as Json;
  expect(await runCli(dir, 'ops', 'key', 'revoke', '--name', 'temp')).toMatchObject({ code: 0 });
  expect((await apiClient(() => rt.url!, temp.key as string)('GET', '/ops/v1/incidents')).status).toBe(401);
  expect(await runCli(dir, 'ops', 'key', 'revoke', '--name', 'temp')).toMatchObject({
    code: 2,
    error: "no ops key named 'temp'",
  });
});

test('bad input is a 400 naming the field; an unknown incident 404', async () => {
  const bad = async (body: unknown, param: string) => {
    const r = await ops('POST', '/ops/v1/incidents', body);
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ type: 'invalid_request_error', param });
  };
  await bad({ processor: 'paypal', reason: 'down' }, 'processor');
  await bad({ processor: 'stripe' }, 'reason');
  await bad({ processor: 'stripe', reason: '   ' }, 'reason');
  await bad({ processor: 'stripe', reason: 'down', severity: 'high' }, 'severity');
  await bad(undefined, 'processor');
  for (const [q, param] of [
    ['status=broken', 'status'],
    ['processor=paypal', 'processor'],
    ['limit=0', 'limit'],
    ['sort=asc', 'sort'],
  ])
    expect((await ops('GET', `/ops/v1/incidents?${q}`)).body.error).toMatchObject({ param });
  const missing = await ops('GET', '/ops/v1/incidents/inc_0000000000000000000000');
  expect(missing.status).toBe(404);
  expect(missing.body.error).toMatchObject({
    type: 'not_found',
    message: "no incident 'inc_0000000000000000000000'",
  });
  expect((await ops('POST', '/ops/v1/incidents/inc_0000000000000000000000/resolve')).status).toBe(404);
  expect((await ops('POST', '/ops/v1/incidents/inc_0000000000000000000000/restart')).status).toBe(404);
});

test('declare on Stripe, payments reroute to Adyen, resolve: the report is in the bucket with the right counts', async () => {
  const declared = await ops('POST', '/ops/v1/incidents', {
    processor: 'stripe',
    reason: 'Stripe answering 503',
  });
  expect(declared.status).toBe(201);
  const incident = declared.body;
  expect(incident).toMatchObject({ object: 'incident', processor: 'stripe', status: 'open' });
  expect(incident.timeline).toEqual([
    expect.objectContaining({ event: 'declared', by: 'alice', text: 'Stripe answering 503' }),
  ]);
  // Declaring again returns the running incident (200), by the same rule as the CLI.
  const again = await ops('POST', '/ops/v1/incidents', { processor: 'stripe', reason: 'again' });
  expect(again).toMatchObject({ status: 200, body: { id: incident.id } });
  // An open incident cannot be confirmed or dismissed: 409 saying why.
  const refused = await ops('POST', `/ops/v1/incidents/${incident.id}/dismiss`, { note: 'oops' });
  expect(refused.status).toBe(409);
  expect(refused.body.error).toMatchObject({
    type: 'conflict',
    code: 'transition_refused',
    message: `incident ${incident.id} is open: it can only be resolved`,
  });
  const early = await ops('GET', `/ops/v1/incidents/${incident.id}/report`);
  expect(early.status).toBe(409);
  expect(early.body.error.message).toContain('a report is written when an open incident is resolved');
  expect(await runCli(dir, 'incident', 'report', incident.id)).toMatchObject({
    code: 2,
    stdout: '',
    error: `incident ${incident.id} is open: a report is written when an open incident is resolved`,
  });
  expect(await runCli(dir, 'incident', 'report', 'inc_0000000000000000000000')).toMatchObject({
    code: 2,
    stdout: '',
    error: "no incident 'inc_0000000000000000000000'",
  });
  forgetHealthCache();

  // Payments that name no processor: Stripe comes first by the platform's order, is skipped.
  const ids: string[] = [];
  for (const [amount, currency] of [
    [1500, 'usd'],
    [2500, 'usd'],
    [990, 'eur'],
  ] as const) {
    const r = await merchantA('POST', '/v1/payments', { amount, currency, payment_method: 'pm_card_visa' });
    expect(r.status).toBe(201);
    ids.push(r.body.id as string);
  }
  for (const id of ids) {
    const p = await until('a captured payment', async () => {
      const body = (await merchantA('GET', `/v1/payments/${id}`)).body;
      return ['captured', 'failed'].includes(body.status as string) ? body : undefined;
    });
    expect(p).toMatchObject({ status: 'captured', processor: 'adyen' });
  }
  // The list shows it; show has the timeline.
  const listed = await ops('GET', '/ops/v1/incidents?processor=stripe&status=open');
  expect(listed.body).toMatchObject({ object: 'list', has_more: false });
  expect(listed.body.data.map((i: Json) => i.id)).toEqual([incident.id]);

  const resolved = await ops('POST', `/ops/v1/incidents/${incident.id}/resolve`, { note: 'Stripe is back' });
  expect(resolved.status).toBe(200);
  expect(resolved.body.timeline.map((e: Json) => [e.event, e.by, e.text])).toEqual([
    ['declared', 'alice', 'Stripe answering 503'],
    ['resolved', 'alice', 'Stripe is back'],
  ]);
  expect((await ops('GET', `/ops/v1/incidents/${incident.id}`)).body.status).toBe('resolved');
  const twice = await ops('POST', `/ops/v1/incidents/${incident.id}/resolve`);
  expect(twice.status).toBe(409);
  expect(twice.body.error.message).toBe(`incident ${incident.id} is resolved: it cannot change any more`);

  // The report, written at resolving, in the bucket.
  const key = `incidents/stripe/${incident.id}`;
  const report = JSON.parse(await getText('reports', `${key}.json`)) as Json;
  expect(report).toMatchObject({
    object: 'incident_report',
    incident: { id: incident.id, processor: 'stripe', status: 'resolved' },
    payments: { read: 3, truncated: false, rerouted: 3, failed: 0, held: 0 },
    backlog: { held: 0, replayed: [] },
    still_open: { operations: [], payments: [] },
    csv: `${key}.csv`,
  });
  expect(report.timeline).toHaveLength(2);
  expect(report.volume_by_currency).toEqual([
    expect.objectContaining({ currency: 'eur', payments: 1, amount: 990, approved_amount: 990 }),
    expect.objectContaining({ currency: 'usd', payments: 2, amount: 4000, approved_amount: 4000 }),
  ]);
  expect(report.rerouted.map((p: Json) => p.payment_id).sort()).toEqual([...ids].sort());
  const adyen = report.approval.find((a: Json) => a.processor === 'adyen');
  expect(adyen.during).toMatchObject({ approved: 3, approval_rate: 1 });
  expect(report.approval.find((a: Json) => a.processor === 'stripe').during.attempts).toBe(0);
  const reader = new CsvReader();
  const csv = await getText('reports', `${key}.csv`);
  const rows = [...reader.push(csv), ...reader.end()];
  expect(rows[0]).toEqual(expect.arrayContaining(['section', 'payment_id', 'detail']));
  expect(rows.slice(1).map((r) => r[0])).toEqual(['rerouted', 'rerouted', 'rerouted']);
  expect(rows[1]![11]).toContain(`stripe is in incident ${incident.id}`);

  // On demand: the API and the CLI give the stored report.
  const viaApi = await ops('GET', `/ops/v1/incidents/${incident.id}/report`);
  expect(viaApi.status).toBe(200);
  expect(viaApi.body).toEqual(report);
  const viaCli = await runCli(dir, 'incident', 'report', incident.id);
  expect(viaCli.code).toBe(0);
  expect(JSON.parse(viaCli.stdout)).toEqual(report);
  expect(
    (await ops('GET', `/ops/v1/incidents/${incident.id}/report?rebuild=maybe`)).body.error,
  ).toMatchObject({
    param: 'rebuild',
  });

  // Reading is bounded: past a limit, the report says it is truncated and counts what it read.
  const bounded = await collectIncidentReport(resolved.body as Incident, [], Date.now(), {
    payments: 2,
    routedChecks: 5,
  });
  expect(bounded.payments).toMatchObject({ read: 2, limit: 2, truncated: true, rerouted: 2 });
  const fewChecks = await collectIncidentReport(resolved.body as Incident, [], Date.now(), {
    payments: 100,
    routedChecks: 1,
  });
  expect(fewChecks.payments).toMatchObject({ read: 3, truncated: true, rerouted: 1 });

  // Every merchant told once of each transition, signed like every event.
  await until('both events at both merchants', () => received.length >= 4 && received);
  await rt.settle();
  for (const p of ['/a', '/b']) {
    const mine = received.filter((r) => r.path === p && r.body.data.object.id === incident.id);
    expect(mine.map((r) => r.body.type).sort()).toEqual([
      'processor.incident.opened',
      'processor.incident.resolved',
    ]);
    for (const r of mine) expect(verifyPaystepSignature(r.raw, r.signature, secrets[p]!)).toBe(true);
    expect(mine.find((r) => r.body.type === 'processor.incident.resolved')!.body.data.object).toEqual({
      id: incident.id,
      object: 'processor_incident',
      processor: 'stripe',
      status: 'resolved',
      opened_at: Math.floor(incident.confirmed_at / 1000),
      resolved_at: Math.floor(resolved.body.closed_at / 1000),
    });
  }

  // The stream delivers the pointer's record and the resolution again: no new event, no delivery.
  const { merchantEventsConsumer } = await import('../../lambdas/events/stream.ts');
  const replay = (c: Partial<StreamChange>) =>
    merchantEventsConsumer.handle({
      sequenceNumber: '000000000000000000000000000000000000042',
      record: { dynamodb: { ApproximateCreationDateTime: Math.floor(Date.now() / 1000) } },
      ...c,
    } as StreamChange);
  await replay({
    eventName: 'INSERT',
    newImage: { pk: 'PROCESSOR#stripe', sk: 'INCIDENT', kind: 'incident-pointer', incident_id: incident.id },
  });
  await replay({
    eventName: 'MODIFY',
    oldImage: { ...incident, kind: 'incident', status: 'open' },
    newImage: { ...resolved.body, kind: 'incident' },
  });
  await rt.settle();
  expect(received.filter((r) => r.body.data.object.id === incident.id)).toHaveLength(4);
  const events = await merchantA('GET', '/v1/events?type=processor.incident.opened');
  expect(events.body.data.filter((e: Json) => e.data.object.id === incident.id)).toHaveLength(1);
});

test('a suspected incident is not news for merchants until it is confirmed', async () => {
  const { suspectIncident } = await import('../../lambdas/incidents/service.ts');
  const s = await suspectIncident('adyen', 'circuit breaker opened: 5 technical failures in a row');
  await rt.settle();
  expect(received.filter((r) => r.body.data.object.id === s.incident.id)).toHaveLength(0);
  const confirmed = await ops('POST', `/ops/v1/incidents/${s.incident.id}/confirm`, {
    note: 'Adyen degraded',
  });
  expect(confirmed.body).toMatchObject({
    status: 'open',
    timeline: [{ by: 'breaker' }, { by: 'alice', event: 'confirmed' }],
  });
  await until(
    'the opened events',
    () => received.filter((r) => r.body.data.object.id === s.incident.id).length >= 2,
  );
  const resolvedToo = await ops('POST', `/ops/v1/incidents/${s.incident.id}/resolve`);
  expect(resolvedToo.status).toBe(200);
  // Newest first, paged by limit.
  const first = await ops('GET', '/ops/v1/incidents?limit=1');
  expect(first.body).toMatchObject({ has_more: true, data: [{ id: s.incident.id }] });
  forgetHealthCache();
});
