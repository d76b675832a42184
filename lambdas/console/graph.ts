/**
 * The execution graph of the console (docs/decisions/0006-console-stack.md): an ASL definition and
 * the states an execution went through → an SVG, drawn by the console itself (no graph library).
 * Pure: no I/O.
 *
 * Layout: one column of boxes in definition order (the order the workflow's author wrote, which
 * reads top to bottom as the happy path). An arrow from a state to the box right below it is a
 * straight line; every other arrow (a Choice's branches, a Catch, a loop back) runs in its own lane
 * to the right of the column, dashed for a Catch. Visited states are filled, the arrows the
 * execution took are drawn thick, a state where it failed is red, the state it is in now is
 * outlined. A Map or Parallel state is one box (its inner states are not drawn).
 */
import { escapeHtml } from './html.ts';

export interface AslLike {
  StartAt: string;
  States: Record<string, Record<string, unknown> & { Type: string }>;
}

export interface GraphPath {
  /** State names in the order they were entered (a state entered twice appears twice). */
  visited: readonly string[];
  /** States where the execution failed (a Fail state reached, or the task whose error ended it). */
  failed?: readonly string[];
  /** The state the execution is in now (running), outlined. */
  current?: string;
}

export type EdgeKind = 'next' | 'choice' | 'default' | 'catch';

export interface Edge {
  from: string;
  to: string;
  kind: EdgeKind;
}

/** Every transition of the definition, in state order: Next, each Choice rule, Default, each Catch. */
export function edgesOf(def: AslLike): Edge[] {
  const out: Edge[] = [];
  for (const [name, s] of Object.entries(def.States)) {
    const add = (to: unknown, kind: EdgeKind) => {
      if (typeof to === 'string' && to in def.States) out.push({ from: name, to, kind });
    };
    add(s.Next, 'next');
    if (Array.isArray(s.Choices)) for (const c of s.Choices) add((c as { Next?: unknown }).Next, 'choice');
    add(s.Default, 'default');
    if (Array.isArray(s.Catch)) for (const c of s.Catch) add((c as { Next?: unknown }).Next, 'catch');
  }
  // One arrow per (from, to, kind): two Choice rules to the same state are one arrow.
  const seen = new Set<string>();
  return out.filter((e) => {
    const k = `${e.from}\u0000${e.to}\u0000${e.kind}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** The transitions an execution took: each pair of consecutive visited states. */
export function takenEdges(visited: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (let i = 1; i < visited.length; i++) out.add(`${visited[i - 1]}\u0000${visited[i]}`);
  return out;
}

const BOX_X = 24;
const BOX_W = 380;
const BOX_H = 30;
const ROW = 50;
const TOP = 36;
const LANE = 10;
const COLORS = {
  box: '#ffffff',
  boxStroke: '#8a8f98',
  visited: '#d6ebff',
  visitedStroke: '#1f5fa8',
  failed: '#fbd5d5',
  failedStroke: '#b42318',
  edge: '#9aa0a6',
  taken: '#1f5fa8',
  text: '#1a1a1a',
};

/** The SVG of a definition with an execution's path (an empty path draws the definition alone). */
export function executionGraph(
  def: AslLike,
  path: GraphPath = { visited: [] },
  o: { title?: string; id?: string } = {},
): string {
  const title = o.title ?? 'Execution graph';
  // Marker ids are document-wide: each graph on a page has its own.
  const id = (o.id ?? 'g').replace(/[^A-Za-z0-9_-]/g, '_');
  const arrow = `${id}-arrow`;
  const arrowTaken = `${id}-arrow-taken`;
  const names = Object.keys(def.States);
  const index = new Map(names.map((n, i) => [n, i]));
  const visits = new Map<string, number>();
  for (const v of path.visited) visits.set(v, (visits.get(v) ?? 0) + 1);
  const failed = new Set(path.failed ?? []);
  const taken = takenEdges(path.visited);
  const edges = edgesOf(def);
  const y = (i: number) => TOP + i * ROW;
  const mid = (i: number) => y(i) + BOX_H / 2;
  const right = BOX_X + BOX_W;

  const parts: string[] = [];
  let lanes = 0;
  const edgeSvg: string[] = [];
  for (const e of edges) {
    const a = index.get(e.from)!;
    const b = index.get(e.to)!;
    const isTaken = taken.has(`${e.from}\u0000${e.to}`);
    const stroke = isTaken ? COLORS.taken : COLORS.edge;
    const width = isTaken ? 2.5 : 1;
    const dash = e.kind === 'catch' ? ' stroke-dasharray="5 3"' : '';
    const cls = `edge edge-${e.kind}${isTaken ? ' taken' : ''}`;
    const marker = `url(#${isTaken ? arrowTaken : arrow})`;
    const label = `${e.from} → ${e.to}${e.kind === 'catch' ? ' (on error)' : e.kind === 'default' ? ' (otherwise)' : ''}`;
    let d: string;
    if (b === a + 1 && e.kind !== 'catch') {
      const x = BOX_X + BOX_W / 2;
      d = `M${x} ${y(a) + BOX_H} L${x} ${y(b) - 2}`;
    } else {
      lanes++;
      const x = right + 14 + lanes * LANE;
      d = `M${right} ${mid(a) - 4} L${x} ${mid(a) - 4} L${x} ${mid(b) + 4} L${right + 2} ${mid(b) + 4}`;
    }
    edgeSvg.push(
      `<path class="${cls}" d="${d}" fill="none" stroke="${stroke}" stroke-width="${width}"${dash} marker-end="${marker}"><title>${escapeHtml(label)}</title></path>`,
    );
  }
  const width = right + 14 + (lanes + 2) * LANE;
  const height = TOP + names.length * ROW;

  // Start marker.
  const start = index.get(def.StartAt) ?? 0;
  const sx = BOX_X + BOX_W / 2;
  parts.push(
    `<circle cx="${sx}" cy="10" r="5" fill="${COLORS.taken}"><title>Start</title></circle>`,
    start === 0
      ? `<path d="M${sx} 15 L${sx} ${y(0) - 2}" stroke="${COLORS.taken}" stroke-width="1.5" marker-end="url(#${arrowTaken})"/>`
      : `<path d="M${sx} 15 L${BOX_X - 10} 15 L${BOX_X - 10} ${mid(start)} L${BOX_X - 2} ${mid(start)}" fill="none" stroke="${COLORS.taken}" stroke-width="1.5" marker-end="url(#${arrowTaken})"/>`,
  );
  parts.push(...edgeSvg);

  names.forEach((name, i) => {
    const s = def.States[name]!;
    const n = visits.get(name) ?? 0;
    const isFailed = failed.has(name);
    const fill = isFailed ? COLORS.failed : n ? COLORS.visited : COLORS.box;
    const stroke = isFailed ? COLORS.failedStroke : n ? COLORS.visitedStroke : COLORS.boxStroke;
    const current = path.current === name;
    const cls = ['state', n ? 'visited' : '', isFailed ? 'failed' : '', current ? 'current' : '']
      .filter(Boolean)
      .join(' ');
    const kind = s.Type === 'Map' || s.Type === 'Parallel' ? ` (${s.Type})` : '';
    const times = n > 1 ? ` ×${n}` : '';
    const status = isFailed
      ? 'failed'
      : current
        ? 'in progress'
        : n
          ? `visited${n > 1 ? ` ${n} times` : ''}`
          : 'not visited';
    const rx = s.Type === 'Choice' ? 14 : s.Type === 'Succeed' || s.Type === 'Fail' ? 15 : 4;
    parts.push(
      `<g class="${cls}" data-state="${escapeHtml(name)}"><title>${escapeHtml(`${name} — ${s.Type}, ${status}`)}</title>` +
        `<rect x="${BOX_X}" y="${y(i)}" width="${BOX_W}" height="${BOX_H}" rx="${rx}" fill="${fill}" stroke="${stroke}" stroke-width="${current ? 3 : n || isFailed ? 1.5 : 1}"/>` +
        `<text x="${BOX_X + 10}" y="${y(i) + 19}" font-size="12" font-family="system-ui, sans-serif" fill="${COLORS.text}">${escapeHtml(truncate(name + kind, 56) + times)}</text></g>`,
    );
  });

  const marker = (id: string, color: string) =>
    `<marker id="${id}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0 0 L10 5 L0 10 z" fill="${color}"/></marker>`;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="execution-graph" role="img" aria-label="${escapeHtml(title)}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">` +
    `<title>${escapeHtml(title)}</title>` +
    `<defs>${marker(arrow, COLORS.edge)}${marker(arrowTaken, COLORS.taken)}</defs>` +
    parts.join('') +
    `</svg>`
  );
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}
