import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseFlags } from '../src/config/config.js';
import { renderConfigDoc } from '../src/config/config-doc.js';
import { TEST_DIR } from './helpers/frames.js';

describe('configuration', () => {
  it('docs/config.md is the schema rendered (run `npm run docs:config`)', () => {
    expect(fs.readFileSync(path.join(TEST_DIR, '..', 'docs', 'config.md'), 'utf8')).toBe(renderConfigDoc());
  });

  it('has defaults for everything and is frozen', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ PORT: 8080, FPS: 5, BATCH_FRAMES: 5, WINDOW_FRAMES: 50 });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('flags win over environment variables', () => {
    expect(loadConfig({ PORT: '9000' }, ['--port', '9001']).PORT).toBe(9001);
    expect(loadConfig({}, ['--hello-timeout-ms=700']).HELLO_TIMEOUT_MS).toBe(700);
    expect(parseFlags(['--a-b', 'x', '--c=1', '--d'])).toEqual({ A_B: 'x', C: '1', D: 'true' });
  });

  it('reports every problem together', () => {
    try {
      loadConfig({ PORT: 'eighty', FPS: '0', MODEL: 'no colon', MODEL_OPTIONS: '[1]' }, ['--nope', '1']);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const problems = (err as ConfigError).problems.join('\n');
      for (const key of ['PORT', 'FPS', 'MODEL', 'MODEL_OPTIONS', '--nope']) expect(problems).toContain(key);
      expect((err as ConfigError).problems).toHaveLength(5);
    }
  });

  it('a window must be a whole number of batches', () => {
    expect(() => loadConfig({ BATCH_FRAMES: '4', WINDOW_FRAMES: '50' })).toThrow(/multiple of BATCH_FRAMES/);
  });
});
