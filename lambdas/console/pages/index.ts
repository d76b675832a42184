/**
 * Every console screen's routes, in navigation order. A new screen adds its module here
 * (docs/console.md "How to add a screen").
 */
import type { ConsoleRoute } from '../types.ts';
import { analyticsRoutes } from './analytics.ts';
import { disputeRoutes } from './disputes.ts';
import { financeRoutes } from './finance.ts';
import { processorRoutes } from './processors.ts';
import { subscriptionRoutes } from './subscriptions.ts';

export const routes: ConsoleRoute[] = [
  ...disputeRoutes,
  ...processorRoutes,
  ...subscriptionRoutes,
  ...financeRoutes,
  ...analyticsRoutes,
];
