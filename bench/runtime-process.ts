/**
 * A local runtime in its own process, driven over IPC, for the benches that measure it from
 * outside (checkout's `child` mode, the soak): the child answers `{ id, cmd, arg }` commands with
 * `{ id, ok, value | error }`; `settle` and `stop` are built in, each bench adds its own.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Runtime } from '../lib/local/runtime.ts';
import { withRuntimeFlags } from '../lib/local/node-flags.ts';
import { ROOT } from './lib.ts';

type Command = (arg: unknown) => unknown;

/**
 * Child side: answers commands until `stop` (which stops the runtime), then resolves. Call after
 * sending the bench's own ready message.
 */
export function serveCommands(rt: Runtime, commands: Record<string, Command>): Promise<void> {
  return new Promise<void>((resolve) => {
    process.on('message', (m: { id: number; cmd: string; arg?: unknown }) => {
      const reply = (out: { ok: boolean; value?: unknown; error?: string }) =>
        process.send!({ id: m.id, ...out });
      void (async () => {
        try {
          if (m.cmd === 'settle') {
            await rt.settle(Number(m.arg));
            reply({ ok: true });
          } else if (m.cmd === 'stop') {
            await rt.stop();
            reply({ ok: true });
            resolve();
          } else if (Object.hasOwn(commands, m.cmd))
            reply({ ok: true, value: await commands[m.cmd]!(m.arg) });
          else reply({ ok: false, error: `unknown command ${m.cmd}` });
        } catch (err) {
          reply({ ok: false, error: (err as Error).message });
        }
      })();
    });
  });
}

export interface RuntimeProcess<Ready> {
  child: ChildProcess;
  /** The child's first message. */
  ready: Ready;
  /** From fork to that message (module load + runtime start). */
  readyMs: number;
  call: <T>(cmd: string, arg?: unknown) => Promise<T>;
  /** `stop`, then the child's exit. */
  stop: () => Promise<void>;
}

/** Parent side: forks `bench/run.ts <args>`, waits for its ready message, and calls its commands. */
export async function forkRuntime<Ready>(
  args: string[],
  options: { env: NodeJS.ProcessEnv; execArgv?: string[]; stdout?: 'inherit' | 'ignore' },
): Promise<RuntimeProcess<Ready>> {
  const t0 = performance.now();
  const child = fork(path.join(ROOT, 'bench', 'run.ts'), args, {
    env: options.env,
    execArgv: withRuntimeFlags(options.execArgv ?? process.execArgv),
    stdio: ['ignore', options.stdout ?? 'inherit', 'inherit', 'ipc'],
  });
  const ready = await new Promise<Ready>((resolve, reject) => {
    child.once('message', (m: Ready) => resolve(m));
    child.once('exit', (code) => reject(new Error(`runtime process exited with ${code} while starting`)));
  });
  const readyMs = performance.now() - t0;
  let next = 0;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  child.on('message', (m: { id?: number; ok?: boolean; value?: unknown; error?: string }) => {
    if (m.id === undefined) return;
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (m.ok) p?.resolve(m.value);
    else p?.reject(new Error(m.error));
  });
  child.on('exit', (code) => {
    for (const p of pending.values()) p.reject(new Error(`runtime process exited with ${code}`));
    pending.clear();
  });
  const call = <T>(cmd: string, arg?: unknown) =>
    new Promise<T>((resolve, reject) => {
      const id = ++next;
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      child.send({ id, cmd, arg });
    });
  return {
    child,
    ready,
    readyMs,
    call,
    stop: async () => {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      await call('stop');
      await exited;
    },
  };
}
