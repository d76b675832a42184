import fs from 'node:fs'; import os from 'node:os'; import path from 'node:path';
process.env.PAYSTEP_LOG_LEVEL='silent';
const { startRuntime } = await import('./lib/local/runtime.ts');
const dir = fs.mkdtempSync(path.join(os.tmpdir(),'st-'));
const t=performance.now(); const rt = await startRuntime({ dataDir: dir, port: 0, scheduler: false });
console.log('start ms', Math.round(performance.now()-t)); await rt.stop(); fs.rmSync(dir,{recursive:true,force:true});
