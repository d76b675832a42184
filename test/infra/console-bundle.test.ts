/**
 * The console's AWS bundle finds its assets: the console function alone is bundled as `cdk synth`
 * bundles it (esbuild, lib/function.ts with its declared `assets` copied beside the handler), then
 * the bundled handler, moved away from the repository so that node_modules cannot be reached,
 * serves htmx, uPlot and its stylesheet from beside itself.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { App, Stack } from 'aws-cdk-lib';
import { assetHooks, PaystepFunction } from '../../lib/function.ts';
import { PROJECT_ROOT } from '../../lib/stack.ts';
import { topology } from '../../lib/topology.ts';
import { CONSOLE_ASSETS } from '../../lambdas/console/assets.ts';
import { cdkContext } from './synth.ts';

describe('console bundle', () => {
  let outdir: string;
  let moved: string;

  beforeAll(() => {
    outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-console-bundle-'));
    const { 'aws:cdk:bundling-stacks': _skip, ...context } = cdkContext();
    const app = new App({ outdir, context });
    const stack = new Stack(app, 'ConsoleBundle');
    new PaystepFunction(stack, 'Console', {
      name: 'console',
      def: topology.functions.console!,
      projectRoot: PROJECT_ROOT,
    });
    app.synth();
  }, 120_000);
  afterAll(() => {
    fs.rmSync(outdir, { recursive: true, force: true });
    if (moved) fs.rmSync(moved, { recursive: true, force: true });
  });

  it('copies every declared asset beside the handler, and the handler serves them from there', async () => {
    const bundle = fs
      .readdirSync(outdir)
      .map((d) => path.join(outdir, d))
      .find((d) => fs.existsSync(path.join(d, 'index.mjs')));
    expect(bundle).toBeDefined();
    for (const [name, file] of Object.entries(CONSOLE_ASSETS))
      expect(fs.readFileSync(path.join(bundle!, 'assets', name), 'utf8')).toBe(
        fs.readFileSync(path.join(PROJECT_ROOT, file), 'utf8'),
      );
    // Away from the repository (no node_modules above it), as in Lambda.
    moved = fs.mkdtempSync(path.join(os.tmpdir(), 'paystep-console-lambda-'));
    fs.cpSync(bundle!, moved, { recursive: true });
    // Lambda's Node runtime provides the AWS SDK (the bundle leaves it out): so does this copy.
    fs.mkdirSync(path.join(moved, 'node_modules'));
    fs.symlinkSync(
      path.join(PROJECT_ROOT, 'node_modules', '@aws-sdk'),
      path.join(moved, 'node_modules', '@aws-sdk'),
    );
    // A child process, as Lambda would load it (jest's module registry is not Node's).
    const script = `
      const { handler } = await import(${JSON.stringify(pathToFileURL(path.join(moved, 'index.mjs')).href)});
      const context = { awsRequestId: 'r1', functionName: 'console', getRemainingTimeInMillis: () => 10000 };
      const out = {};
      for (const name of ${JSON.stringify(Object.keys(CONSOLE_ASSETS))}) {
        const r = await handler({ httpMethod: 'GET', path: '/console/assets/' + name, headers: { host: 'localhost' },
          requestContext: { requestId: 'r1', stage: 'prod', identity: { sourceIp: '10.0.0.1' } }, body: null }, context);
        out[name] = { status: r.statusCode, length: r.body.length, cache: r.headers['cache-control'] };
      }
      process.stdout.write(JSON.stringify(out));`;
    const stdout = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: moved,
      env: { ...process.env, POWERTOOLS_LOG_LEVEL: 'SILENT', NODE_OPTIONS: '' },
      encoding: 'utf8',
    });
    const served = JSON.parse(stdout) as Record<string, { status: number; length: number; cache: string }>;
    for (const name of Object.keys(CONSOLE_ASSETS))
      expect(served[name]).toEqual({
        status: 200,
        length: fs.readFileSync(path.join(moved, 'assets', name), 'utf8').length,
        cache: 'public, max-age=31536000, immutable',
      });
  }, 60_000);

  it('refuses assets that are missing, outside the repository, or two of one name', () => {
    expect(() => assetHooks(PROJECT_ROOT, 'f', ['nope/missing.js'])).toThrow(/not found/);
    expect(() => assetHooks(PROJECT_ROOT, 'f', ['../x.js'])).toThrow(/inside the repository/);
    expect(() => assetHooks(PROJECT_ROOT, 'f', ['package.json', 'package.json'])).toThrow(/two assets/);
  });
});
