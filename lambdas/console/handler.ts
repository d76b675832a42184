/**
 * The ops console's one Lambda (docs/console.md "How it is built"), behind `GET /console`,
 * `GET|POST /console/{proxy+}` (lib/topology/console.ts). In order:
 *
 * - `/console/assets/<name>`: the bundled static files, cached for a year (their URLs carry a
 *   content hash);
 * - `/console/login` (GET: the form; POST: a login key → a session cookie) and `/console/logout`;
 * - anything else needs a session (else: see-other to the sign-in page), then the route of a
 *   screen (lambdas/console/pages/index.ts), whose permission the operator's role must have (else
 *   403 naming it), whose path parameters must be plausible ids (else 404), and, for a POST,
 *   whose form must carry the session's CSRF token (else 403: nothing runs).
 *
 * Every answer carries the security headers (a Content-Security-Policy allowing the console's own
 * scripts and styles only, no framing, no sniffing, same-origin referrers). A screen's
 * `ConsoleError` is a message page with its status; anything unexpected is a 500 page naming the
 * request id (logged with its stack, never shown).
 */
import { randomBytes } from 'node:crypto';
import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { config } from '../shared/config.ts';
import { ApiError } from '../shared/errors.ts';
import { checkQuery, isPlausiblePathParam } from '../shared/input.ts';
import { logger } from '../shared/logger.ts';
import { containsCardNumber } from '../domain/pan.ts';
import { writeAudit } from '../store/audit.ts';
import {
  createSession,
  deleteSession,
  getOperator,
  getSession,
  loginThrottled,
  operatorForKey,
  recordLoginFailure,
  SESSION_SECONDS,
} from '../store/operators.ts';
import { asset } from './assets.ts';
import { html, type Html } from './html.ts';
import { attachmentDisposition } from '../reports/storage.ts';
import { layout, messageBody } from './layout.ts';
import { can, type Operator } from './model.ts';
import { routes as screenRoutes } from './pages/index.ts';
import {
  csrfTokenFor,
  FLASH_COOKIE,
  LOGIN_COOKIE,
  parseCookies,
  sameSecret,
  serializeCookie,
  SESSION_COOKIE,
} from './session.ts';
import { ConsoleError, type ConsoleRequest, type ConsoleResponse, type ConsoleRoute } from './types.ts';

/** The largest form the console reads (bytes). */
export const MAX_FORM_BYTES = 64 * 1024;
/** The longest form value (characters): dispute evidence text fits, a file does not. */
export const MAX_FORM_VALUE = 20_000;
const MAX_FORM_FIELDS = 200;

export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=()',
};

interface Compiled {
  route: ConsoleRoute;
  regex: RegExp;
  names: string[];
}

function compile(rs: readonly ConsoleRoute[]): Compiled[] {
  return rs
    .map((route) => {
      const names: string[] = [];
      const pattern = route.path
        .split('/')
        .map((seg) => {
          const m = /^\{([A-Za-z0-9_]+)\}$/.exec(seg);
          if (!m) return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
          names.push(m[1]!);
          return '([^/]+)';
        })
        .join('/');
      return { route, regex: new RegExp(`^${pattern}$`), names };
    })
    .sort((a, b) => a.names.length - b.names.length); // `/payments/search` before `/payments/{id}`
}

/** Everything the handler knows of one request, before a screen sees it. */
interface Incoming {
  method: string;
  /** Below /console: `/`, `/payments/pay_1`. */
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  cookies: Record<string, string>;
  body: string;
  requestId: string;
  sourceIp: string;
  /** What precedes /console in the browser's URL (`/prod` on API Gateway's default endpoint). */
  prefix: string;
  secure: boolean;
}

/** What the handler answers, before headers are added. */
interface Outgoing {
  status: number;
  body: string;
  contentType?: string;
  headers?: Record<string, string>;
  cookies?: string[];
}

const nullObject = () => Object.create(null) as Record<string, string>;

function incoming(event: APIGatewayProxyEvent): Incoming {
  const headers = nullObject();
  for (const [k, v] of Object.entries(event.headers ?? {})) if (v !== undefined) headers[k.toLowerCase()] = v;
  const query = nullObject();
  for (const [k, v] of Object.entries(event.queryStringParameters ?? {})) if (v !== undefined) query[k] = v;
  const full = event.path ?? '/console';
  const below = full.replace(/^\/console/, '');
  const ctx = event.requestContext;
  // API Gateway's default endpoint serves the API below its stage (`/prod/console/…`); a custom
  // domain or the local runtime serve it at the root.
  const prefix = /\.amazonaws\.com$/i.test(headers.host ?? '') && ctx?.stage ? `/${ctx.stage}` : '';
  let body = event.body ?? '';
  if (event.isBase64Encoded && body) body = Buffer.from(body, 'base64').toString('utf8');
  return {
    method: (event.httpMethod ?? 'GET').toUpperCase(),
    path: below === '' ? '/' : below,
    query,
    headers,
    cookies: parseCookies(headers.cookie),
    body,
    requestId: ctx?.requestId ?? '',
    sourceIp: ctx?.identity?.sourceIp ?? 'unknown',
    prefix,
    secure: config.consoleSecureCookies(),
  };
}

const cookiePath = (req: Incoming) => `${req.prefix}/console`;
const setCookie = (req: Incoming, name: string, value: string, maxAge: number) =>
  serializeCookie(name, value, { path: cookiePath(req), maxAge, secure: req.secure });

/** Absolute console links in markup (`href="/console/…"`) get the stage prefix where there is one. */
function withPrefix(markup: string, prefix: string): string {
  if (!prefix) return markup;
  return markup.replace(
    /(\s(?:href|action|src|hx-get|hx-post|hx-put|hx-patch|hx-delete)=")\/console(?=[/"?#])/g,
    `$1${prefix}/console`,
  );
}

function finish(req: Incoming, out: Outgoing): APIGatewayProxyResult {
  const isHtml = (out.contentType ?? 'text/html; charset=utf-8').startsWith('text/html');
  const headers: Record<string, string> = {
    ...SECURITY_HEADERS,
    'content-type': out.contentType ?? 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    ...(req.secure ? { 'strict-transport-security': 'max-age=31536000; includeSubDomains' } : {}),
    ...out.headers,
  };
  return {
    statusCode: out.status,
    headers,
    ...(out.cookies?.length ? { multiValueHeaders: { 'set-cookie': out.cookies } } : {}),
    body: isHtml ? withPrefix(out.body, req.prefix) : out.body,
  };
}

const page = (status: number, doc: Html, cookies?: string[]): Outgoing => ({
  status,
  body: doc.value,
  cookies,
});

function seeOther(req: Incoming, to: string, cookies: string[] = [], htmx = false): Outgoing {
  const location = `${req.prefix}/console${to === '/' ? '' : to}`;
  // htmx follows a redirect inside its request: HX-Redirect makes the browser go there instead.
  return htmx
    ? { status: 200, body: '', headers: { 'hx-redirect': location }, cookies }
    : { status: 303, body: '', headers: { location }, cookies };
}

/** A path below /console a sign-in may return to (nothing else: no open redirect). */
const safeNext = (next: string | undefined): string =>
  next && /^\/[A-Za-z0-9_\-/]{0,200}$/.test(next) && !next.startsWith('//') && !next.startsWith('/login')
    ? next
    : '/';

/** Parses an application/x-www-form-urlencoded body: bounded, UTF-8, no card numbers. */
export function parseForm(body: string, contentType: string | undefined): Record<string, string> {
  const form = nullObject();
  if (!body) return form;
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded')
    throw new ConsoleError(400, 'The console accepts forms only (application/x-www-form-urlencoded).');
  if (Buffer.byteLength(body) > MAX_FORM_BYTES)
    throw new ConsoleError(400, `The form is larger than ${MAX_FORM_BYTES / 1024} KB.`);
  const pairs = body.split('&').filter(Boolean);
  if (pairs.length > MAX_FORM_FIELDS) throw new ConsoleError(400, 'The form has too many fields.');
  for (const pair of pairs) {
    const i = pair.indexOf('=');
    const [rawKey, rawValue] = i < 0 ? [pair, ''] : [pair.slice(0, i), pair.slice(i + 1)];
    let key: string;
    let value: string;
    try {
      key = decodeURIComponent(rawKey.replace(/\+/g, ' '));
      value = decodeURIComponent(rawValue.replace(/\+/g, ' '));
    } catch {
      throw new ConsoleError(400, 'The form is not valid UTF-8.');
    }
    if (key.length > 100 || value.length > MAX_FORM_VALUE)
      throw new ConsoleError(400, `A form field is longer than ${MAX_FORM_VALUE} characters.`);
    if (!key.isWellFormed() || !value.isWellFormed())
      throw new ConsoleError(400, 'The form is not valid Unicode.');
    if (key !== 'csrf' && containsCardNumber(value))
      throw new ConsoleError(
        400,
        'A field holds what looks like a card number: paystep never accepts or stores card numbers.',
      );
    form[key] = value;
  }
  return form;
}

/**
 * Where a refused form came from: the screen above the POST's path (`/payments/pay_…/refund` →
 * `/payments/pay_…`, `/finance/exceptions/resolve` → `/finance`), when it is a page the operator
 * can open; so a refused refund leads back to its payment, not only to the home page.
 */
function backTo(req: Incoming): string | undefined {
  if (req.method !== 'POST') return undefined;
  const parts = req.path.split('/').filter(Boolean);
  for (let n = parts.length - 1; n > 0; n--) {
    const parent = `/${parts.slice(0, n).join('/')}`;
    try {
      if (match('GET', parent).route) return parent;
    } catch {
      return undefined; // a malformed id: no page to go back to
    }
  }
  return undefined;
}

function errorPage(req: Incoming, status: number, title: string, message: string, op?: SignedIn): Outgoing {
  const back = op ? backTo(req) : undefined;
  return page(
    status,
    layout({
      title,
      body: messageBody(
        title,
        message,
        html`<p>
          ${back ? html`<a href="/console${back}">Back to the page you came from</a> · ` : ''}<a
            href="/console"
            >Back to the console home</a
          >
        </p>`,
      ),
      ...(op ? { operator: op.operator, routes: allRoutes(), csrfToken: op.csrf } : {}),
    }),
  );
}

const TITLES: Record<number, string> = {
  400: 'That request cannot be done',
  403: 'Not allowed',
  404: 'Not found',
  409: 'Conflict',
};

interface SignedIn {
  operator: Operator;
  token: string;
  csrf: string;
}

async function signedIn(req: Incoming): Promise<SignedIn | undefined> {
  const token = req.cookies[SESSION_COOKIE];
  if (!token) return undefined;
  const session = await getSession(token);
  if (!session) return undefined;
  const operator = await getOperator(session.operator_id);
  if (!operator || operator.disabled) return undefined;
  return { operator, token, csrf: csrfTokenFor(session) };
}

// ---- sign-in and sign-out ----

function loginPage(req: Incoming, status: number, message?: string, flash?: string): Outgoing {
  const loginToken = randomBytes(24).toString('base64url');
  const next = safeNext(req.query.next);
  const body = html`<section class="login" aria-labelledby="login-title">
    <h1 id="login-title">Sign in</h1>
    ${message ? html`<div class="error-box" role="alert"><p>${message}</p></div>` : ''}
    <form method="post" action="/console/login" class="stack">
      <input type="hidden" name="login_token" value="${loginToken}" />
      <input type="hidden" name="next" value="${next}" />
      <label for="key">Operator key</label>
      <input id="key" name="key" type="password" autocomplete="off" required aria-describedby="key-help" />
      <p id="key-help" class="muted">
        The <code>opk_…</code> key printed by <code>paystep operator create</code>.
      </p>
      <button type="submit">Sign in</button>
    </form>
  </section>`;
  return page(status, layout({ title: 'Sign in', body, flash }), [
    setCookie(req, LOGIN_COOKIE, loginToken, 1800),
    ...(flash ? [setCookie(req, FLASH_COOKIE, '', 0)] : []),
  ]);
}

async function login(req: Incoming): Promise<Outgoing> {
  if (req.method === 'GET') {
    if (await signedIn(req)) return seeOther(req, '/');
    return loginPage(req, 200, undefined, req.cookies[FLASH_COOKIE]);
  }
  const form = parseForm(req.body, req.headers['content-type']);
  if (!sameSecret(req.cookies[LOGIN_COOKIE] ?? '', form.login_token))
    return loginPage(req, 403, 'The sign-in form expired. Enter your key again.');
  const now = Date.now();
  // Failed sign-ins are counted per source address: past the limit, the source waits out the window.
  if (await loginThrottled(req.sourceIp, now))
    return loginPage(req, 429, 'Too many failed sign-ins from your address. Try again in 15 minutes.');
  const operator = await operatorForKey((form.key ?? '').trim());
  if (!operator) {
    await recordLoginFailure(req.sourceIp, now);
    // The same answer for a malformed, unknown, revoked or disabled key: nothing about who exists.
    return loginPage(req, 401, 'That key does not sign anyone in.');
  }
  const { token } = await createSession(operator.id, now);
  await writeAudit(
    { action: 'operator.sign_in', target: { kind: 'operator', id: operator.id } },
    operator,
    now,
  );
  return seeOther(req, safeNext(form.next), [
    setCookie(req, SESSION_COOKIE, token, SESSION_SECONDS),
    setCookie(req, LOGIN_COOKIE, '', 0),
  ]);
}

async function logout(req: Incoming, who: SignedIn | undefined): Promise<Outgoing> {
  if (!who) return seeOther(req, '/login');
  const form = parseForm(req.body, req.headers['content-type']);
  if (!sameSecret(who.csrf, form.csrf ?? req.headers['x-csrf-token']))
    return errorPage(
      req,
      403,
      'Not allowed',
      'The form’s security token is missing or out of date: reload the page and try again.',
      who,
    );
  await deleteSession(who.token);
  await writeAudit(
    { action: 'operator.sign_out', target: { kind: 'operator', id: who.operator.id } },
    who.operator,
  );
  return seeOther(req, '/login', [
    setCookie(req, SESSION_COOKIE, '', 0),
    setCookie(req, FLASH_COOKIE, 'You are signed out.', 60),
  ]);
}

// ---- screens ----

let compiled: Compiled[] | undefined;
let extraRoutes: ConsoleRoute[] = [];
const allRoutes = () => [...screenRoutes, ...extraRoutes];
const routeTable = () => (compiled ??= compile(allRoutes()));

/** For tests: routes served besides the screens' (e.g. a route that throws). */
export function setExtraRoutesForTest(rs: ConsoleRoute[]): void {
  extraRoutes = rs;
  compiled = undefined;
}

function match(
  method: string,
  path: string,
): { route?: ConsoleRoute; params: Record<string, string>; other: boolean } {
  let other = false;
  for (const c of routeTable()) {
    const m = c.regex.exec(path);
    if (!m) continue;
    if (c.route.method !== method) {
      other = true;
      continue;
    }
    const params = nullObject();
    for (let i = 0; i < c.names.length; i++) {
      let v: string;
      try {
        v = decodeURIComponent(m[i + 1]!);
      } catch {
        throw new ConsoleError(404, 'No such page: the id in the address is malformed.');
      }
      if (!isPlausiblePathParam(v))
        throw new ConsoleError(404, 'No such page: the id in the address is malformed.');
      params[c.names[i]!] = v;
    }
    return { route: c.route, params, other };
  }
  return { params: nullObject(), other };
}

async function screen(req: Incoming, who: SignedIn): Promise<Outgoing> {
  const { route, params, other } = match(req.method, req.path);
  if (!route) {
    if (other) return errorPage(req, 405, 'Not allowed', `${req.method} is not how this page is used.`, who);
    return errorPage(req, 404, 'Not found', 'There is no console page at this address.', who);
  }
  if (!can(who.operator.role, route.permission))
    return errorPage(
      req,
      403,
      'Not allowed',
      `This page needs the permission ${route.permission}, which the ${who.operator.role} role does not have. Ask an admin if you need it.`,
      who,
    );
  const form = req.method === 'POST' ? parseForm(req.body, req.headers['content-type']) : nullObject();
  if (req.method === 'POST' && !sameSecret(who.csrf, form.csrf ?? req.headers['x-csrf-token']))
    return errorPage(
      req,
      403,
      'Not allowed',
      'The form’s security token is missing or out of date: reload the page and try again. Nothing was done.',
      who,
    );
  delete form.csrf;
  try {
    checkQuery(req.query);
  } catch (err) {
    if (err instanceof ApiError) throw new ConsoleError(400, err.message);
    throw err;
  }
  const now = Date.now();
  const creq: ConsoleRequest = {
    operator: who.operator,
    method: req.method as 'GET' | 'POST',
    path: req.path,
    params,
    query: req.query,
    form,
    csrfToken: who.csrf,
    htmx: req.headers['hx-request'] === 'true',
    now,
    requestId: req.requestId,
    audit: async (draft) => {
      await writeAudit(draft, who.operator);
    },
  };
  const res: ConsoleResponse = await route.handler(creq);
  return render(req, who, res, creq.htmx);
}

function render(req: Incoming, who: SignedIn, res: ConsoleResponse, htmx: boolean): Outgoing {
  switch (res.kind) {
    case 'page': {
      const flash = req.cookies[FLASH_COOKIE];
      return page(
        res.status ?? 200,
        layout({
          title: res.title,
          nav: res.nav,
          body: res.body,
          operator: who.operator,
          routes: allRoutes(),
          csrfToken: who.csrf,
          flash,
        }),
        flash ? [setCookie(req, FLASH_COOKIE, '', 0)] : [],
      );
    }
    case 'fragment':
      return { status: res.status ?? 200, body: res.body.value };
    case 'redirect': {
      const to = res.to.replace(/^\/console(?=\/|$)/, '') || '/';
      if (!to.startsWith('/') || to.startsWith('//'))
        throw new Error(`redirect to a non-console path: ${res.to}`);
      return seeOther(
        req,
        to,
        res.flash ? [setCookie(req, FLASH_COOKIE, res.flash.slice(0, 500), 60)] : [],
        htmx,
      );
    }
    case 'external':
      if (!/^https?:\/\//.test(res.to)) throw new Error(`external redirect to a non-URL: ${res.to}`);
      return { status: 303, body: '', headers: { location: res.to, 'cache-control': 'no-store' } };
    case 'download':
      return {
        status: 200,
        body: res.body,
        contentType: res.contentType,
        headers: { 'content-disposition': attachmentDisposition(res.filename) },
      };
  }
}

function serveAsset(req: Incoming): Outgoing {
  const a = req.method === 'GET' ? asset(req.path.slice('/assets/'.length)) : undefined;
  if (!a) return { status: 404, body: 'Not found', contentType: 'text/plain; charset=utf-8' };
  return {
    status: 200,
    body: a.body,
    contentType: a.contentType,
    // The URL carries the content's hash (`?v=`): a new version is a new URL.
    headers: { 'cache-control': 'public, max-age=31536000, immutable' },
  };
}

async function route(req: Incoming): Promise<Outgoing> {
  if (req.path.startsWith('/assets/')) return serveAsset(req);
  if (req.path === '/login') return login(req);
  const who = await signedIn(req);
  if (req.path === '/logout' && req.method === 'POST') return logout(req, who);
  if (!who) {
    const next = req.method === 'GET' && req.path !== '/' ? `?next=${encodeURIComponent(req.path)}` : '';
    return seeOther(req, `/login${next}`, [], req.headers['hx-request'] === 'true');
  }
  try {
    return await screen(req, who);
  } catch (err) {
    if (err instanceof ConsoleError)
      return errorPage(req, err.status, TITLES[err.status] ?? 'Error', err.message, who);
    // A service's refusal (the same errors the API answers with): its message, its status.
    if (err instanceof ApiError && err.status < 500)
      return errorPage(
        req,
        err.status,
        TITLES[err.status] ?? 'That request cannot be done',
        err.message,
        who,
      );
    throw err;
  }
}

/** The console's answer to one API Gateway proxy event. */
export async function serveConsole(event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> {
  let req: Incoming | undefined;
  try {
    req = incoming(event);
    logger.appendKeys({ requestId: req.requestId });
    return finish(req, await route(req));
  } catch (err) {
    const requestId = event.requestContext?.requestId ?? '';
    if (req && err instanceof ConsoleError)
      return finish(req, errorPage(req, err.status, TITLES[err.status] ?? 'Error', err.message));
    logger.error('console request failed', { error: err as Error, requestId });
    const fallback = req ?? ({ prefix: '', secure: true } as Incoming);
    return finish(
      fallback,
      page(
        500,
        layout({
          title: 'Something went wrong',
          body: messageBody(
            'Something went wrong',
            html`The console could not answer this request. It has been logged as request
              <code>${requestId || 'unknown'}</code>: quote it when you report the problem.`,
          ),
        }),
      ),
    );
  }
}

export const handler = middy<APIGatewayProxyEvent, APIGatewayProxyResult>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .handler((event) => serveConsole(event));
