/**
 * Each area's part of the topology, merged by lib/topology.ts. Add an area by writing
 * `lib/topology/<area>.ts` (exporting a `TopologyFragment`) and listing it here.
 */
import type { TopologyFragment } from '../topology.ts';
import { refunds } from './refunds.ts';
import { sweeper } from './sweeper.ts';
import { finance } from './finance.ts';
import { events } from './events.ts';
import { disputes } from './disputes.ts';
import { webhooks } from './webhooks.ts';
import { billing } from './billing.ts';
import { routing } from './routing.ts';
import { ops } from './ops.ts';
import { consoleArea } from './console.ts';

export const fragments: TopologyFragment[] = [
  refunds,
  sweeper,
  events,
  disputes,
  webhooks,
  finance,
  routing,
  billing,
  ops,
  consoleArea,
];
