import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, Instance, RedisServer } from './helpers/cluster.js';
import { waitFor } from './helpers/wait.js';

const SECRETS = {
  AUTH_SECRET: 'worker-env-test-secret-0123456789abcdef',
  METRICS_TOKEN: 'worker-env-test-metrics-token-0123456789',
  // Not the server's, but just as private: only what a worker needs may reach it.
  SOME_API_KEY: 'worker-env-test-api-key-0123456789',
};

let instance: Instance | null = null;
let redis: RedisServer | null = null;
afterEach(async () => {
  await instance?.stop();
  await redis?.stop();
  instance = redis = null;
});

const environOf = (pid: number) =>
  new Map(
    fs
      .readFileSync(`/proc/${pid}/environ`, 'latin1')
      .split('\0')
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)] as const),
  );

describe('the environment of a worker', () => {
  it('holds what Python and the model need, and none of the server\'s secrets', async () => {
    redis = new RedisServer(await freePort());
    await redis.start();
    instance = new Instance({ ...SECRETS, REDIS_URL: redis.url, WORKERS: '2', LANG: 'C.UTF-8', TMPDIR: '/tmp' });
    await instance.start();
    const pids = await waitFor(() => {
      const started = instance!.logs.filter((l) => l.event === 'worker_start').map((l) => l.workerPid as number);
      return started.length === 2 && started;
    }, { what: 'two workers to start' });

    for (const pid of pids) {
      const env = environOf(pid);
      const text = [...env].map(([k, v]) => `${k}=${v}`).join('\n');
      for (const name of ['AUTH_SECRET', 'METRICS_TOKEN', 'REDIS_URL', 'SOME_API_KEY', 'NODE_OPTIONS', 'PORT', 'MODEL_OPTIONS']) expect(env.has(name)).toBe(false);
      for (const value of [...Object.values(SECRETS), redis.url]) expect(text).not.toContain(value);
      // What it does get: where to find Python and the model, locale, temporary directory, one thread per pool.
      expect(env.get('PATH')).toBeTruthy();
      expect(env.get('PYTHONPATH')?.split(':').some((dir) => dir.endsWith('/test/models'))).toBe(true);
      expect(env.get('LANG')).toBe('C.UTF-8');
      expect(env.get('TMPDIR')).toBe('/tmp');
      expect(env.get('OMP_NUM_THREADS')).toBe('1');
      expect(env.get('PYTHONDONTWRITEBYTECODE')).toBe('1');
      // The server's own environment has dozens of names; the worker's is a short, fixed list.
      expect(env.size).toBeLessThanOrEqual(16);
    }
  }, 60_000);
});
