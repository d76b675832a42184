/**
 * The simulators' durable delivery (lib/local/processors/framework/delivery.ts): a notification a
 * processor owes is never lost, even when the process dies in the tick it was enqueued, before it
 * was batched into an envelope (what the Adyen refund crash test at kill point 17 found: the
 * refund stored at the simulator, its REFUND notification gone with the process).
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import { DurableDelivery, type Envelope } from '../../lib/local/processors/framework/delivery.ts';
import { DurableStore } from '../../lib/local/processors/framework/store.ts';
import { pino } from 'pino';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function delivery(file: string, sent: Envelope<string>[]) {
  const store = new DurableStore(file);
  store.load();
  const d = new DurableDelivery<string>({
    store,
    collection: 'notifications',
    logger: pino({ level: 'silent' }),
    send: async (env) => {
      sent.push(env);
      return { accepted: true, status: 200 };
    },
    retryDelay: () => 10,
  });
  return { store, d };
}

describe('durable delivery', () => {
  it('an item enqueued just before the process died is sent after the restart, once', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'paystep-delivery-'));
    dirs.push(dir);
    const file = path.join(dir, 'sim.jsonl');
    const sentBefore: Envelope<string>[] = [];
    const first = delivery(file, sentBefore);
    first.d.resume();
    first.d.enqueue('REFUND re_1');
    // The process dies in this tick: what is on disk now is all a restart has (the batch, on
    // setImmediate, never runs in the dead process).
    const atDeath = path.join(dir, 'at-death.jsonl');
    copyFileSync(file, atDeath);
    expect(sentBefore).toEqual([]);
    await first.d.stop();
    first.store.close();

    const sent: Envelope<string>[] = [];
    const second = delivery(atDeath, sent);
    second.d.resume();
    await second.d.idle();
    expect(sent.map((e) => e.items)).toEqual([['REFUND re_1']]);
    second.store.close();

    // Nothing is owed any more: a third start sends nothing.
    const again: Envelope<string>[] = [];
    const third = delivery(atDeath, again);
    third.d.resume();
    await third.d.idle();
    expect(again).toEqual([]);
    third.store.close();
  });

  it('items enqueued in one tick still go in one envelope', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'paystep-delivery-'));
    dirs.push(dir);
    const sent: Envelope<string>[] = [];
    const { d, store } = delivery(path.join(dir, 'sim.jsonl'), sent);
    d.resume();
    d.enqueue('a');
    d.enqueue('b');
    await d.idle();
    expect(sent.map((e) => e.items)).toEqual([['a', 'b']]);
    expect(store.count('notifications:queued')).toBe(0);
    store.close();
  });
});
