/**
 * `markActivity` (lambdas/store/ledger.ts) against a local DynamoDB: the day a merchant had activity
 * is listed for the daily reports; marking it again from the same container writes nothing, and a
 * container whose clients were pointed elsewhere (`resetClients`) marks afresh.
 */
import { jest } from '@jest/globals';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { clients, resetClients } from '../../lambdas/shared/aws.ts';
import { activeMerchants, markActivity } from '../../lambdas/store/ledger.ts';
import { startLocalTable, type LocalTable } from './store-local-table.ts';

let t: LocalTable;
beforeAll(async () => {
  t = await startLocalTable();
});
afterAll(async () => t?.stop());

test('a day is marked once per container; the reports see every merchant marked', async () => {
  const puts = () => sent.mock.calls.filter(([cmd]) => cmd instanceof PutCommand).length;
  let sent = jest.spyOn(clients.ddb(), 'send');
  await markActivity('2026-01-02', 'mch_a');
  await markActivity('2026-01-02', 'mch_a');
  await markActivity('2026-01-02', 'mch_b');
  await markActivity('2026-01-03', 'mch_a');
  expect(puts()).toBe(3);
  sent.mockRestore();
  expect(await activeMerchants('2026-01-02')).toEqual(['mch_a', 'mch_b']);
  expect(await activeMerchants('2026-01-03')).toEqual(['mch_a']);

  resetClients(); // e.g. a local runtime restarted on another data dir in the same process
  sent = jest.spyOn(clients.ddb(), 'send');
  await markActivity('2026-01-02', 'mch_a');
  expect(puts()).toBe(1);
  sent.mockRestore();
});
