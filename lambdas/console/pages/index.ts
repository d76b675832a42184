/**
 * Every console screen's routes, in navigation order. A new screen adds its module here
 * (docs/console.md "How to add a screen").
 */
import type { ConsoleRoute } from '../types.ts';
import { auditRoutes } from './audit.ts';
import { homeRoutes } from './home.ts';

export const routes: ConsoleRoute[] = [...homeRoutes, ...auditRoutes];
