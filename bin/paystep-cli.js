#!/usr/bin/env node
// The `paystep` command. paystep runs on Node 24 (it executes its TypeScript directly); when this
// file is started by an older Node, it re-runs itself with the Node 24 installed in node_modules.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  const node = join(root, 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(node)) {
    console.error(
      `paystep needs Node 24 or newer (this is ${process.version}); run "npm ci" in ${root} first.`,
    );
    process.exit(1);
  }
  const r = spawnSync(node, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
const { main } = await import('../lib/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
