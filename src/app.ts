import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Config } from './config/config.js';
import { FrameBudget } from './handler/frame-budget.js';
import { FrameHandler } from './handler/frame-handler.js';
import { LoadMonitor } from './handler/load-monitor.js';
import { ModelHandler } from './handler/model-handler.js';
import { findPython, MODEL_DIR } from './ipc/python.js';
import { WorkerPool } from './ipc/worker-pool.js';
import { createHttpServer, sendJson } from './server/http-server.js';
import { Authenticator } from './server/auth.js';
import { SessionRegistry } from './server/session-registry.js';
import { SESSIONS_PATH, sessionsRoute } from './server/sessions-api.js';
import { StreamServer } from './server/stream-server.js';
import type { Logger } from './utils/logger.js';

export const WEB_ROOT = path.resolve(MODEL_DIR, '..', 'web');

export interface App {
  server: http.Server;
  budget: FrameBudget;
  models: ModelHandler;
  pool: WorkerPool;
  stream: StreamServer;
  /** Bound port (useful with PORT=0). */
  port: number;
  close(): Promise<void>;
}

/**
 * Builds the instance from its parts, each given what it needs, and starts
 * listening once the worker pool is up. Used by main.ts and by the tests.
 */
export async function startApp(config: Config, logger: Logger): Promise<App> {
  const python = findPython(config.PYTHON);
  const pool = new WorkerPool(
    {
      size: config.WORKERS,
      python,
      model: config.MODEL,
      modelOptions: config.MODEL_OPTIONS,
      modelPath: config.MODEL_PATH,
      startTimeoutMs: config.WORKER_START_TIMEOUT_MS,
      requestTimeoutMs: config.WORKER_REQUEST_TIMEOUT_MS,
      maxRestarts: config.WORKER_MAX_RESTARTS,
      restartWindowMs: config.WORKER_RESTART_WINDOW_MS,
      backoffMaxMs: config.WORKER_BACKOFF_MAX_MS,
    },
    logger,
  );
  try {
    await pool.start();
  } catch (err) {
    await pool.close();
    throw err;
  }

  let draining = false;
  const budget = new FrameBudget(config.FRAME_BUDGET_BYTES);
  const models = new ModelHandler(pool, budget, config, logger, {
    onUnitDone: (session, unit, timing) =>
      logger.debug(
        { event: 'unit_done', sessionId: session.id, seqFrom: unit.seqFrom, seqTo: unit.seqTo, frames: unit.frames.length, ...timing },
        'unit analysed',
      ),
  });
  const sessions = new SessionRegistry(config.RESUME_TTL_MS, (session) => stream.expire(session));
  const auth = new Authenticator({ secret: config.AUTH_SECRET, jwksUrl: config.AUTH_JWKS_URL, audience: config.AUTH_AUDIENCE, issuer: config.AUTH_ISSUER });
  if (auth.mode === 'demo') {
    logger.warn({ event: 'demo_mode' }, 'no AUTH_SECRET or AUTH_JWKS_URL: running in demo mode, anyone may open a session');
  }
  const frames = new FrameHandler(config, models, budget, logger, () => sessions.size);
  const load = new LoadMonitor(config.FPS, config.LATENCY_TARGET_MS);
  const modelInfo = () => {
    const info = pool.workers().find((w) => w.info)?.info;
    return info ? { name: info.model, version: info.version } : null;
  };
  const ready = () => !draining && pool.readyCount > 0;
  const clientAddress = (req: http.IncomingMessage) => req.socket.remoteAddress ?? 'unknown';
  const stream = new StreamServer({ config, logger, sessions, auth, clientAddress, frames, models, load, accepting: ready, modelInfo });

  const server = createHttpServer(
    {
      '/healthz': (_req, res) => sendJson(res, 200, { status: 'ok' }),
      '/readyz': (_req, res) =>
        sendJson(res, ready() ? 200 : 503, {
          status: ready() ? 'ready' : 'not_ready',
          draining,
          workers: { size: pool.size, ready: pool.readyCount, busy: pool.busyCount },
          sessions: sessions.size,
          auth: auth.mode,
        }),
      [`${SESSIONS_PATH}*`]: sessionsRoute(auth, sessions),
    },
    WEB_ROOT,
  );
  server.on('upgrade', (req, socket, head) => stream.handleUpgrade(req, socket, head));
  // Slow-loris guard for plain HTTP; WebSocket upgrades have the hello timeout.
  server.headersTimeout = 10_000;
  server.maxHeadersCount = 100;
  server.requestTimeout = 30_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.PORT, config.HOST, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  logger.info({ event: 'listening', port, host: config.HOST, workers: pool.size, model: config.MODEL }, 'jipjung listening');

  return {
    server,
    budget,
    models,
    pool,
    stream,
    port,
    async close() {
      draining = true;
      stream.closeAll(1001, 'server shutting down');
      sessions.close();
      frames.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await pool.close();
    },
  };
}
