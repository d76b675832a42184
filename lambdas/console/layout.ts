/**
 * The console's page frame (docs/console.md "How it is built") and the small helpers screens share:
 * the layout wraps a screen's `page` answer with the navigation the operator's role may see, who is
 * signed in, the sign-out form, the one-time flash message, a skip link and landmarks; the
 * stylesheet, htmx, uPlot and the console's own script are included from /console/assets/.
 *
 * Screens link with absolute console paths (`/console/payments/pay_…`, see `consoleHref`): the
 * handler adds the stage prefix where the page is served below one (AWS default endpoint).
 */
import { assetPath } from './assets.ts';
import { html, type Html, type HtmlValue } from './html.ts';
import { can, type Operator } from './model.ts';
import type { ConsoleRequest, ConsoleRoute, NavKey } from './types.ts';

/** The sections, in navigation order, with their paths below /console. */
export const SECTIONS: readonly { key: NavKey; label: string; path: string }[] = [
  { key: 'home', label: 'Home', path: '/' },
  { key: 'payments', label: 'Payments', path: '/payments' },
  { key: 'executions', label: 'Executions', path: '/executions' },
  { key: 'reviews', label: 'Reviews', path: '/reviews' },
  { key: 'disputes', label: 'Disputes', path: '/disputes' },
  { key: 'processors', label: 'Processors', path: '/processors' },
  { key: 'subscriptions', label: 'Subscriptions', path: '/subscriptions' },
  { key: 'finance', label: 'Finance', path: '/finance' },
  { key: 'analytics', label: 'Analytics', path: '/analytics' },
  { key: 'audit', label: 'Audit log', path: '/audit' },
];

/** `/console` + a path below it: `consoleHref('/payments/pay_1')`, `consoleHref('/payments', { status: 'failed' })`. */
export function consoleHref(path: string, query: Record<string, string | number | undefined> = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') q.set(k, String(v));
  const qs = q.toString();
  return `/console${path === '/' ? '' : path}${qs ? `?${qs}` : ''}`;
}

/** The hidden CSRF field every POST form of a screen embeds. */
export function csrfField(req: Pick<ConsoleRequest, 'csrfToken'>): Html {
  return html`<input type="hidden" name="csrf" value="${req.csrfToken}" />`;
}

/**
 * The sections this operator's navigation shows: those with a GET route at the section's path that
 * the role may open (a section whose screen is not there yet is not shown).
 */
export function visibleSections(op: Operator, routes: readonly ConsoleRoute[]): typeof SECTIONS {
  return SECTIONS.filter((s) =>
    routes.some((r) => r.method === 'GET' && r.path === s.path && can(op.role, r.permission)),
  );
}

/**
 * A time-series chart drawn by uPlot in the browser (lambdas/console/static/console.js); `x` in
 * epoch seconds. Give the same numbers in a table too: charts need JavaScript, tables do not.
 */
export function lineChart(spec: {
  label: string;
  x: readonly number[];
  series: readonly { label: string; values: readonly (number | null)[] }[];
  height?: number;
}): Html {
  const data = JSON.stringify({ x: spec.x, series: spec.series, height: spec.height });
  return html`<figure
    class="chart"
    data-chart="${data}"
    aria-label="${spec.label} (chart; the numbers are in the table below)"
  >
    <figcaption>${spec.label}</figcaption>
  </figure>`;
}

function head(title: string): Html {
  return html`<meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <meta name="referrer" content="same-origin" />
    <meta
      name="htmx-config"
      content='{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false}'
    />
    <title>${title} · paystep console</title>
    <link rel="icon" href="data:," />
    <link rel="stylesheet" href="/console${assetPath('console.css')}" />
    <link rel="stylesheet" href="/console${assetPath('uPlot.min.css')}" />
    <script src="/console${assetPath('htmx.min.js')}" defer></script>
    <script src="/console${assetPath('uPlot.iife.min.js')}" defer></script>
    <script src="/console${assetPath('console.js')}" defer></script>`;
}

export interface LayoutInput {
  title: string;
  nav?: NavKey;
  body: HtmlValue;
  /** Signed-in pages only. */
  operator?: Operator;
  routes?: readonly ConsoleRoute[];
  csrfToken?: string;
  flash?: string;
}

/** A whole HTML document. */
export function layout(p: LayoutInput): Html {
  const op = p.operator;
  const header = op
    ? html`<header class="site-header">
        <a class="brand" href="/console">paystep console</a>
        <nav class="site-nav" aria-label="Sections">
          <ul>
            ${visibleSections(op, p.routes ?? []).map(
              (s) =>
                html`<li>
                  <a href="${consoleHref(s.path)}" ${s.key === p.nav ? html` aria-current="page"` : ''}
                    >${s.label}</a
                  >
                </li>`,
            )}
          </ul>
        </nav>
        <div class="who">
          <span
            >Signed in as
            <strong>${op.name}</strong>
            (${op.role}${op.merchant_id ? html`, merchant <code>${op.merchant_id}</code>` : ''})</span
          >
          <form method="post" action="/console/logout">
            <input type="hidden" name="csrf" value="${p.csrfToken ?? ''}" /><button
              type="submit"
              class="secondary"
            >
              Sign out
            </button>
          </form>
        </div>
      </header>`
    : html`<header class="site-header"><span class="brand">paystep console</span></header>`;
  const hxHeaders = p.csrfToken ? JSON.stringify({ 'X-CSRF-Token': p.csrfToken }) : undefined;
  return html`<!doctype html>
<html lang="en">
<head>
${head(p.title)}
</head>
<body${hxHeaders ? html` hx-headers="${hxHeaders}"` : ''}>
<a class="skip-link" href="#main">Skip to content</a>
${header}
<main id="main" tabindex="-1">
${p.flash ? html`<div class="flash" role="status">${p.flash}</div>` : ''}
${p.body}
</main>
</body>
</html>`;
}

/** A message page's body (errors, refusals). */
export function messageBody(title: string, message: HtmlValue, extra: HtmlValue = ''): Html {
  return html`<h1>${title}</h1>
    <div class="error-box" role="alert"><p>${message}</p></div>
    ${extra}`;
}
