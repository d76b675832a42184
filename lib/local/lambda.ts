/**
 * In-process Lambda: loads a topology function's handler module and invokes it with a Lambda-like
 * context. Errors thrown by a handler propagate to the caller unchanged (the caller decides what
 * a failed invocation means: a 502 at the gateway, a failed task in a workflow, a retried batch).
 * The configured timeout is enforced: a handler still running past it fails with
 * `Sandbox.Timedout`, as Lambda reports it. With `permissions`, each invocation runs as its function
 * (lib/local/permissions.ts): the local services check its calls against its `uses`, and its
 * environment lacks the resource variables it would not have in AWS.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Context } from 'aws-lambda';
import type { FunctionDef } from '../topology.ts';
import type { Logger } from './log.ts';
import { runAsFunction, type LocalPermissions } from './permissions.ts';

type Handler = (event: unknown, context: Context) => Promise<unknown>;

export class LambdaTimeoutError extends Error {
  override name = 'Sandbox.Timedout';
}

export class LocalLambdas {
  private readonly root: string;
  private readonly functions: Record<string, FunctionDef>;
  private readonly physicalName: (name: string) => string;
  private readonly loaded = new Map<string, Promise<Handler>>();
  private readonly log: Logger;
  private readonly invocations = new Map<string, number>();
  private readonly permissions?: LocalPermissions;

  constructor(opts: {
    root: string;
    functions: Record<string, FunctionDef>;
    physicalName: (n: string) => string;
    logger: Logger;
    /** Enforce each function's `uses` (the runtime always does; unit tests may not). */
    permissions?: LocalPermissions;
  }) {
    this.root = opts.root;
    this.functions = opts.functions;
    this.physicalName = opts.physicalName;
    this.log = opts.logger;
    this.permissions = opts.permissions;
  }

  /** Topology name from a name, physical name or Lambda ARN. */
  resolve(nameOrArn: string): string {
    const last = nameOrArn.startsWith('arn:') ? (nameOrArn.split(':')[6] ?? '') : nameOrArn;
    if (this.functions[last]) return last;
    for (const name of Object.keys(this.functions)) if (this.physicalName(name) === last) return name;
    throw new Error(`no function named ${nameOrArn}`);
  }

  arn(name: string): string {
    return `arn:aws:lambda:local:000000000000:function:${this.physicalName(name)}`;
  }

  /** Loads every handler now, so a broken module fails the start instead of the first request. */
  async loadAll(): Promise<void> {
    await Promise.all(Object.keys(this.functions).map((n) => this.load(n)));
  }

  /** Functions whose handler module is loaded. */
  names(): string[] {
    return [...this.loaded.keys()];
  }

  stats(): Record<string, number> {
    return Object.fromEntries(this.invocations);
  }

  private load(name: string): Promise<Handler> {
    let p = this.loaded.get(name);
    if (!p) {
      const def = this.functions[name]!;
      p = import(pathToFileURL(path.join(this.root, def.entry)).href).then((mod: { handler?: unknown }) => {
        if (typeof mod.handler !== 'function')
          throw new Error(`${def.entry} does not export a function named handler`);
        return mod.handler as Handler;
      });
      this.loaded.set(name, p);
    }
    return p;
  }

  async invoke(nameOrArn: string, event: unknown): Promise<unknown> {
    const name = this.resolve(nameOrArn);
    const def = this.functions[name]!;
    const handler = await this.load(name);
    const timeoutMs = (def.timeoutSeconds ?? 10) * 1000;
    const deadline = Date.now() + timeoutMs;
    const requestId = randomUUID();
    const context: Context = {
      callbackWaitsForEmptyEventLoop: false,
      functionName: this.physicalName(name),
      functionVersion: '$LATEST',
      invokedFunctionArn: this.arn(name),
      memoryLimitInMB: String(def.memoryMb ?? 512),
      awsRequestId: requestId,
      logGroupName: `/aws/lambda/${this.physicalName(name)}`,
      logStreamName: 'local',
      getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
      done: () => undefined,
      fail: () => undefined,
      succeed: () => undefined,
    };
    this.invocations.set(name, (this.invocations.get(name) ?? 0) + 1);
    let timer: NodeJS.Timeout | undefined;
    const started = Date.now();
    // A structured clone: the handler gets its own copy of the event, as over the wire.
    const run = () => handler(structuredClone(event), context);
    try {
      return await Promise.race([
        this.permissions ? runAsFunction(name, this.permissions, run) : run(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new LambdaTimeoutError(`Task timed out after ${timeoutMs / 1000} seconds`)),
            timeoutMs,
          );
        }),
      ]);
    } catch (err) {
      this.log.debug({ fn: name, requestId, err: (err as Error).name }, 'invocation failed');
      throw err;
    } finally {
      clearTimeout(timer);
      this.log.trace({ fn: name, ms: Date.now() - started }, 'invoked');
    }
  }
}
