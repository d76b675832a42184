/**
 * Every console screen's routes, in navigation order. A new screen adds its module here
 * (docs/console.md "How to add a screen").
 */
import type { ConsoleRoute } from '../types.ts';
import { analyticsRoutes } from './analytics.ts';
import { auditRoutes } from './audit.ts';
import { disputeRoutes } from './disputes.ts';
import { executionsRoutes } from './executions.ts';
import { financeRoutes } from './finance.ts';
import { homeRoutes } from './home.ts';
import { paymentActionRoutes } from './payment-actions.ts';
import { paymentPageRoutes } from './payment.ts';
import { paymentsSearchRoutes } from './payments.ts';
import { processorRoutes } from './processors.ts';
import { reviewsRoutes } from './reviews.ts';
import { subscriptionRoutes } from './subscriptions.ts';

export const routes: ConsoleRoute[] = [
  ...homeRoutes,
  ...paymentsSearchRoutes,
  ...paymentPageRoutes,
  ...paymentActionRoutes,
  ...executionsRoutes,
  ...reviewsRoutes,
  ...disputeRoutes,
  ...processorRoutes,
  ...subscriptionRoutes,
  ...financeRoutes,
  ...analyticsRoutes,
  ...auditRoutes,
];
