import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config/config.js';
import { startApp, type App } from '../../src/app.js';
import { createLogger } from '../../src/utils/logger.js';
import { TEST_MODELS } from './frames.js';

export { frame, scene, TEST_DIR, TEST_MODELS } from './frames.js';

/** The fixture model for tests about the server rather than the model: a score from brightness, no network. */
export const BRIGHTNESS_MODEL = { MODEL: 'brightness_model:BrightnessModel', MODEL_PATH: TEST_MODELS } as const;

export interface TestApp {
  app: App;
  url: string;
  base: string;
  /** Base URL of the operations listener (/metrics, /dashboard, the detailed /readyz). */
  ops: string;
  /** Every log line the instance wrote, parsed. */
  logs: Array<Record<string, any>>;
  close(): Promise<void>;
}

/**
 * A real instance on a free loopback port, with its logs captured as
 * objects. Tests stream faster than real time, so the rate limit's burst is
 * opened wide and a session may queue more units; every client connects from
 * 127.0.0.1, so the per-address limits are opened too, unless a test sets them.
 * The operations listener takes a free port, so that instances run side by side.
 */
export async function startTestApp(env: Record<string, string> = {}): Promise<TestApp> {
  const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', WORKERS: '2', LOG_LEVEL: 'debug', RATE_BURST_FRAMES: '1000', SESSION_QUEUE_UNITS: '20', UPGRADES_PER_IP_PER_MINUTE: '100000', MAX_CONNECTIONS_PER_IP: '1000', METRICS_PORT: '0', ...env });
  const logs: Array<Record<string, any>> = [];
  let partial = '';
  const sink = new Writable({
    write(chunk, _enc, cb) {
      partial += chunk.toString();
      const lines = partial.split('\n');
      partial = lines.pop()!;
      for (const line of lines) if (line) logs.push(JSON.parse(line));
      cb();
    },
  });
  const app = await startApp(config, createLogger(config.LOG_LEVEL, sink));
  return {
    app,
    url: `ws://127.0.0.1:${app.port}/v1/stream`,
    base: `http://127.0.0.1:${app.port}`,
    ops: `http://127.0.0.1:${app.opsPort}`,
    logs,
    close: () => app.close(),
  };
}
