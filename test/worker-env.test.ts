import { describe, expect, it } from 'vitest';
import { workerEnv } from '../src/ipc/worker-env.js';

describe('the environment of a worker', () => {
  it('is built name by name from the server\'s', () => {
    const env = workerEnv(
      { AUTH_SECRET: 's', REDIS_URL: 'redis://x', HOME: '/root', PATH: '/bin', LC_ALL: 'C', OMP_NUM_THREADS: '8', OMP_WAIT_POLICY: 'passive', PYTHONPATH: '/extra' },
      ['/models', undefined, '/work/model'],
    );
    expect(env).toEqual({
      PATH: '/bin',
      LC_ALL: 'C',
      OMP_WAIT_POLICY: 'passive',
      PYTHONPATH: '/models:/work/model:/extra',
      // One thread per native pool, whatever the server's setting: one worker per core.
      OMP_NUM_THREADS: '1',
      OPENBLAS_NUM_THREADS: '1',
      MKL_NUM_THREADS: '1',
      NUMEXPR_NUM_THREADS: '1',
      PYTHONUNBUFFERED: '1',
      PYTHONDONTWRITEBYTECODE: '1',
    });
    expect(workerEnv({}, []).PATH).toBe('/usr/local/bin:/usr/bin:/bin');
  });
});
