/**
 * Incident mode's records (docs/routing.md "Incidents") on the local runtime's DynamoDB, through
 * the service and `paystep incident …`: one running incident per processor, declare confirms a
 * suspected one, transitions only as the table allows (refusals exit 2 saying why), a closed
 * incident frees the processor for the next one, and a pointer left stale by a crash is replaced.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DeleteCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { startRuntime, type Runtime } from '../../lib/local/runtime.ts';
import { clients } from '../../lambdas/shared/aws.ts';
import { config } from '../../lambdas/shared/config.ts';
import { declareIncident, suspectIncident, resolveIncident } from '../../lambdas/incidents/service.ts';
import { runningIncident } from '../../lambdas/store/incidents.ts';
import type { Json } from '../fixtures/api.ts';
import { runCli } from '../fixtures/cli.ts';

let rt: Runtime;
let dir: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-incidents-'));
  rt = await startRuntime({ dataDir: dir, port: 0, scheduler: false, gateway: false });
});

afterAll(async () => {
  await rt?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function paystep(...args: string[]): Promise<{ code: number; json: Json; error: string }> {
  const r = await runCli(dir, ...args);
  if (r.code) expect(r.stdout).toBe('');
  return { code: r.code, json: r.code ? {} : (JSON.parse(r.stdout) as Json), error: r.error };
}

test('declare, list, show, resolve through the CLI; the processor is free again afterwards', async () => {
  const d = await paystep('incident', 'declare', '--processor', 'stripe', '--reason', 'API answering 503');
  expect(d).toMatchObject({
    code: 0,
    json: { object: 'incident', processor: 'stripe', status: 'open', reason: 'API answering 503' },
  });
  const id = d.json.id as string;
  expect(id).toMatch(/^inc_/);
  expect((await runningIncident('stripe'))?.id).toBe(id);

  // A second declaration returns the running incident: one per processor.
  expect((await paystep('incident', 'declare', '--processor', 'stripe', '--reason', 'again')).json.id).toBe(
    id,
  );
  expect(
    (await paystep('incident', 'list', '--processor', 'stripe', '--status', 'open')).json.data.map(
      (i: Json) => i.id,
    ),
  ).toEqual([id]);

  const resolved = await paystep('incident', 'resolve', id, '--note', 'Stripe status page: recovered');
  expect(resolved.json).toMatchObject({ status: 'resolved', closed_at: expect.any(Number) });
  expect(resolved.json.timeline.map((e: Json) => [e.event, e.by, e.text])).toEqual([
    ['declared', 'cli', 'API answering 503'],
    ['resolved', 'cli', 'Stripe status page: recovered'],
  ]);
  expect(await runningIncident('stripe')).toBeUndefined();
  const next = await paystep('incident', 'declare', '--processor', 'stripe', '--reason', 'second outage');
  expect(next.json.id).not.toBe(id);
  await resolveIncident(next.json.id as string, 'test');
});

test('a suspected incident is confirmed by a declaration, or dismissed; refusals say why', async () => {
  const s = await suspectIncident('adyen', '5 technical failures in a row');
  expect(s).toMatchObject({ created: true, incident: { status: 'suspected', confirmed_at: null } });
  const d = await declareIncident('adyen', 'ops confirm: timeouts', 'cli');
  expect(d).toMatchObject({ created: false, incident: { id: s.incident.id, status: 'open' } });
  expect(await paystep('incident', 'dismiss', s.incident.id)).toMatchObject({
    code: 2,
    error: `incident ${s.incident.id} is open: it can only be resolved`,
  });
  await paystep('incident', 'resolve', s.incident.id);
  expect(await paystep('incident', 'resolve', s.incident.id)).toMatchObject({
    code: 2,
    error: `incident ${s.incident.id} is resolved: it cannot change any more`,
  });

  const again = await suspectIncident('adyen', 'error rate 60 %');
  expect(
    (await paystep('incident', 'dismiss', again.incident.id, '--note', 'a test card run')).json,
  ).toMatchObject({ status: 'dismissed' });
});

test('wrong values exit 2 naming them', async () => {
  expect(await paystep('incident', 'declare', '--processor', 'paypal', '--reason', 'x')).toMatchObject({
    code: 2,
    error: expect.stringContaining("'paypal'"),
  });
  expect((await paystep('incident', 'declare', '--processor', 'stripe', '--reason', '   ')).error).toBe(
    'the reason must not be empty',
  );
  expect((await paystep('incident', 'show', 'nope')).error).toBe("'nope' is not an incident id (inc_…)");
  expect((await paystep('incident', 'show', 'inc_0000000000000000000000')).error).toBe(
    "no incident 'inc_0000000000000000000000'",
  );
  expect((await paystep('incident', 'list', '--status', 'closed')).code).toBe(2);
});

test('a pointer left stale by a crash (closed or missing incident) does not block the next incident', async () => {
  const table = config.tableName('main');
  await clients.ddb().send(
    new PutCommand({
      TableName: table,
      Item: {
        pk: 'PROCESSOR#stripe',
        sk: 'INCIDENT',
        kind: 'incident-pointer',
        incident_id: 'inc_gone000000000000000000',
      },
    }),
  );
  const d = await declareIncident('stripe', 'after a crash', 'cli');
  expect(d.created).toBe(true);
  expect((await runningIncident('stripe'))?.id).toBe(d.incident.id);
  await resolveIncident(d.incident.id, 'test');
  await clients
    .ddb()
    .send(new DeleteCommand({ TableName: table, Key: { pk: 'PROCESSOR#stripe', sk: 'INCIDENT' } }));
});
