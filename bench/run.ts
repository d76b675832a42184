/**
 * Runs one benchmark: `npm run bench -- <name> [flags]` (or `node bench/run.ts <name> …`), where
 * `<name>` is a module in bench/ exporting `main(argv)`, e.g. `npm run bench -- checkout --help`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const dir = path.dirname(fileURLToPath(import.meta.url));
const available = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && f !== 'lib.ts' && f !== 'cost-model.ts')
  .map((f) => f.slice(0, -3))
  .sort();

const [name, ...argv] = process.argv.slice(2);
if (!name || name === '--help' || name === '-h' || !available.includes(name)) {
  if (name && name !== '--help' && name !== '-h') console.error(`bench: no benchmark named "${name}"`);
  console.error(`usage: npm run bench -- <name> [flags]   (benchmarks: ${available.join(', ')})`);
  process.exit(name && name !== '--help' && name !== '-h' ? 2 : 0);
}
const mod = (await import(pathToFileURL(path.join(dir, `${name}.ts`)).href)) as {
  main?: (argv: string[]) => Promise<number | void>;
};
if (typeof mod.main !== 'function') {
  console.error(`bench: bench/${name}.ts does not export main(argv)`);
  process.exit(2);
}
const code = await mod.main(argv);
process.exitCode = typeof code === 'number' ? code : 0;
