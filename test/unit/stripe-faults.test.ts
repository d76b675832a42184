/**
 * What the Stripe simulator's faults (5xx, 429, dropped connections, unanswered requests) turn into
 * through the `stripe` SDK and the adapter, and why a retry with the same idempotency key is safe.
 */
import { randomUUID } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import { ProcessorUnavailableError, ProcessorUnreachableError } from '../../lambdas/connectors/types.ts';
import {
  sim,
  url,
  authorizeRequest,
  adapter,
  adapterAt,
  expectRejects,
  authorized,
  useStripeSimulator,
} from '../fixtures/stripe-simulator.ts';

useStripeSimulator();

describe('faults', () => {
  test('failNext: a 5xx with no SDK retries → ProcessorUnavailableError, nothing happened; the retry works', async () => {
    const a = adapter({ maxNetworkRetries: 0 });
    const before = sim.stats();
    sim.faults.set({ failNext: 1 });
    const req = authorizeRequest();
    const err = await expectRejects(a.authorize(req), ProcessorUnavailableError);
    expect(err.processor).toBe('stripe');
    expect(sim.stats().paymentIntentsCreated).toBe(before.paymentIntentsCreated);
    const r = authorized(await a.authorize(req));
    expect(r.outcome).toBe('captured');
    expect(sim.stats().paymentIntentsCreated - before.paymentIntentsCreated).toBe(1);
  });

  test("the SDK's own retries (maxNetworkRetries 2) absorb a single 5xx on a read", async () => {
    const a = adapter({ maxNetworkRetries: 2 });
    const made = authorized(await a.authorize(authorizeRequest()));
    const before = sim.stats();
    sim.faults.set({ failNext: 1 });
    expect((await a.retrieve(made.processorReference)).status).toBe('captured');
    expect(sim.stats().requests - before.requests).toBe(2);
  });

  test('an authorization is sent once, whatever the SDK retries: the workflow retries it with the same key', async () => {
    const a = adapter({ maxNetworkRetries: 2 });
    const before = sim.stats();
    sim.faults.set({ failNext: 1 });
    const req = authorizeRequest();
    await expectRejects(a.authorize(req), ProcessorUnavailableError);
    expect(sim.stats().requests - before.requests).toBe(1);
    const r = authorized(await a.authorize(req));
    expect(r.outcome).toBe('captured');
    expect(sim.stats().paymentIntentsCreated - before.paymentIntentsCreated).toBe(1);
  });

  test('timeoutNext: the charge happens but the answer never comes; the retry with the same key gets it', async () => {
    const before = sim.stats();
    sim.faults.set({ timeoutNext: 1 });
    const req = authorizeRequest();
    await expectRejects(adapter({ timeoutMs: 300 }).authorize(req), ProcessorUnavailableError);
    expect(sim.stats().paymentIntentsCreated - before.paymentIntentsCreated).toBe(1);
    const r = authorized(await adapter().authorize(req));
    expect(r.outcome).toBe('captured');
    expect(sim.stats().paymentIntentsCreated - before.paymentIntentsCreated).toBe(1);
    expect(sim.stats().confirms - before.confirms).toBe(1);
  });

  test('rateLimitNext → 429 → ProcessorUnavailableError; failRate 1 fails everything', async () => {
    sim.faults.set({ rateLimitNext: 1 });
    const rl = await expectRejects(adapter().authorize(authorizeRequest()), ProcessorUnavailableError);
    expect(rl.message).toMatch(/429/);
    sim.faults.set({ failRate: 1 });
    await expectRejects(adapter().retrieve('pi_whatever'), ProcessorUnavailableError);
  });

  test('downRate: the connection is dropped before executing → ProcessorUnavailableError, nothing happened', async () => {
    const before = sim.stats();
    sim.faults.set({ downRate: 1 });
    const req = authorizeRequest();
    // The simulator's own address drops the connection (a reset): that proves nothing was processed
    // to nobody, so it is not "unreachable".
    const err = await expectRejects(
      adapter({ maxNetworkRetries: 0 }).authorize(req),
      ProcessorUnavailableError,
    );
    expect(err).not.toBeInstanceOf(ProcessorUnreachableError);
    expect(sim.stats().paymentIntentsCreated).toBe(before.paymentIntentsCreated);
    sim.faults.reset();
    expect(authorized(await adapter().authorize(req)).outcome).toBe('captured');
    expect(sim.stats().paymentIntentsCreated - before.paymentIntentsCreated).toBe(1);
  });

  test('downRate 1 closes the API door: connections are refused → ProcessorUnreachableError (nothing was sent)', async () => {
    await sim.doorSettled();
    const door = adapterAt(sim.apiUrl);
    const before = sim.stats();
    sim.faults.set({ downRate: 1 });
    await sim.doorSettled();
    const req = authorizeRequest();
    const err = await expectRejects(door.authorize(req), ProcessorUnreachableError);
    expect(err.message).toMatch(/refused \(ECONNREFUSED\)/);
    expect(sim.stats().requests).toBe(before.requests);
    sim.faults.reset();
    await sim.doorSettled();
    expect(authorized(await door.authorize(req)).outcome).toBe('captured');
    expect(sim.stats().paymentIntentsCreated - before.paymentIntentsCreated).toBe(1);
  });

  test('timeoutRate: every request executes but is not answered, replays included; cleared, the retry gets it', async () => {
    const before = sim.stats();
    sim.faults.set({ timeoutRate: 1 });
    const req = authorizeRequest();
    await expectRejects(adapter({ timeoutMs: 300 }).authorize(req), ProcessorUnavailableError);
    await expectRejects(adapter({ timeoutMs: 300 }).authorize(req), ProcessorUnavailableError);
    expect(sim.stats().paymentIntentsCreated - before.paymentIntentsCreated).toBe(1);
    expect(sim.faults.get()).toEqual({ timeoutRate: 1 });
    sim.faults.reset();
    expect(authorized(await adapter().authorize(req)).outcome).toBe('captured');
    expect(sim.stats().paymentIntentsCreated - before.paymentIntentsCreated).toBe(1);
    expect(() => sim.faults.set({ downRate: 2 })).toThrow(/downRate must be a number in 0..1/);
  });

  test('faults are driven over HTTP too, and `match` limits them to some requests', async () => {
    const set = await fetch(`${url}/_sim/faults`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ failNext: 2, match: '^POST /v1/refunds' }),
    });
    expect(await set.json()).toEqual({ failNext: 2, match: '^POST /v1/refunds' });
    const a = adapter();
    const r = authorized(await a.authorize(authorizeRequest()));
    await expectRejects(a.refund(r.processorReference, 100, randomUUID()), ProcessorUnavailableError);
    expect(await (await fetch(`${url}/_sim/faults`)).json()).toEqual({
      failNext: 1,
      match: '^POST /v1/refunds',
    });
    const cleared = await fetch(`${url}/_sim/faults`, { method: 'DELETE' });
    expect(await cleared.json()).toEqual({});
    expect((await a.refund(r.processorReference, 100, randomUUID())).status).toBe('succeeded');
    const bad = await fetch(`${url}/_sim/faults`, { method: 'POST', body: '{"failRate": 2}' });
    expect(bad.status).toBe(400);
  });
});

describe('many authorizations at once', () => {
  test('twenty in flight on one adapter: all captured, with one request listener on the SDK client (Node warns past ten)', async () => {
    const a = adapter();
    // The SDK client's event emitter (stripe.core.js defines it as `_emitter`).
    const emitter = (a.client as unknown as { _emitter: EventEmitter })._emitter;
    const inFlight = Promise.all(Array.from({ length: 20 }, () => a.authorize(authorizeRequest())));
    expect(emitter.listenerCount('request')).toBeLessThanOrEqual(1);
    const results = await inFlight;
    expect(results.map((r) => authorized(r).outcome)).toEqual(Array(20).fill('captured'));
    expect(emitter.listenerCount('request')).toBeLessThanOrEqual(1);
  });
});
