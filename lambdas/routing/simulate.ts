/**
 * POST /v1/routing/simulate — a payment's routing facts → the processors it would try, in order,
 * which rule decided, and why, in words. Moves no money; `config` in the body tries a
 * configuration before it is stored.
 */
import { httpHandler } from '../shared/http.ts';
import { parse } from '../payments/validation.ts';
import { SimulateBody, simulateRoute } from './service.ts';

export const handler = httpHandler(async (req) => ({
  status: 200,
  body: await simulateRoute(req.merchantId, parse(SimulateBody, req.body ?? {})),
}));
