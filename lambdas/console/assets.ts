/**
 * The console's static files (docs/decisions/0006-console-stack.md "Assets"): served by the console
 * Lambda under /console/assets/<name>?v=<content hash> with a year-long cache lifetime (a new file
 * has a new hash, so a new URL). In the AWS bundle the files sit in `assets/` beside the handler
 * (lib/function.ts copies a function's declared `assets`); run from the source tree (the local
 * runtime, tests) they are read where they are in the repository. No imports from lib/: the
 * topology imports this list.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** URL name → the file, relative to the repository root. */
export const CONSOLE_ASSETS: Readonly<Record<string, string>> = {
  'htmx.min.js': 'node_modules/htmx.org/dist/htmx.min.js',
  'uPlot.iife.min.js': 'node_modules/uplot/dist/uPlot.iife.min.js',
  'uPlot.min.css': 'node_modules/uplot/dist/uPlot.min.css',
  'console.css': 'lambdas/console/static/console.css',
  'console.js': 'lambdas/console/static/console.js',
  'analytics.js': 'lambdas/console/assets/analytics.js',
};

/** Where lib/function.ts puts a function's assets, relative to its bundle. */
export const BUNDLED_ASSETS_DIR = 'assets';

export interface Asset {
  body: string;
  contentType: string;
  /** First 12 hex digits of the SHA-256 of the content (the `v` of its URL). */
  version: string;
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

const here = path.dirname(fileURLToPath(import.meta.url));
const loaded = new Map<string, Asset>();

function locate(name: string, repoPath: string): string {
  const bundled = path.join(here, BUNDLED_ASSETS_DIR, name);
  if (existsSync(bundled)) return bundled;
  // lambdas/console/ → the repository root.
  return path.join(here, '..', '..', repoPath);
}

/** The asset named `name`, or undefined when there is none of that name. Read once, then kept. */
export function asset(name: string): Asset | undefined {
  if (!Object.hasOwn(CONSOLE_ASSETS, name)) return undefined;
  let a = loaded.get(name);
  if (!a) {
    const body = readFileSync(locate(name, CONSOLE_ASSETS[name]!), 'utf8');
    a = {
      body,
      contentType: TYPES[path.extname(name)] ?? 'application/octet-stream',
      version: createHash('sha256').update(body).digest('hex').slice(0, 12),
    };
    loaded.set(name, a);
  }
  return a;
}

/** The path of an asset below /console, with its version: `/assets/htmx.min.js?v=…`. */
export const assetPath = (name: string): string => `/assets/${name}?v=${asset(name)!.version}`;
