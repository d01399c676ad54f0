import { it } from 'vitest';
import { startTestApp } from '../helpers/app.js';
import { launchChromium, makeY4m, tempDir } from './browser.js';
it('timing', async () => {
  const out: string[] = [];
  let t0 = Date.now();
  const dir = tempDir();
  const y4m = makeY4m(dir, { face: 6, empty: 6 });
  out.push('y4m ' + (Date.now() - t0)); t0 = Date.now();
  const t = await startTestApp();
  out.push('app ' + (Date.now() - t0)); t0 = Date.now();
  const b = await launchChromium({ y4m, allowCamera: true });
  out.push('chromium ' + (Date.now() - t0)); t0 = Date.now();
  await b.close();
  out.push('chromium close ' + (Date.now() - t0)); t0 = Date.now();
  await t.close();
  out.push('app close ' + (Date.now() - t0)); t0 = Date.now();
  require('fs').writeFileSync('/tmp/scratch/timing.txt', out.join('\n'));
});
