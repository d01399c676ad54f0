import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Config } from './config/config.js';
import { FrameBudget } from './handler/frame-budget.js';
import { LoadMonitor } from './handler/load-monitor.js';
import { Scheduler } from './handler/scheduler.js';
import { Pipelines, type SessionPipeline } from './handler/session-pipeline.js';
import { UnitAlignment } from './handler/unit-alignment.js';
import { findPython, MODEL_DIR } from './ipc/python.js';
import { WorkerPool } from './ipc/worker-pool.js';
import { CLOSE_CODES } from './protocol/close-codes.js';
import { createHttpServer, sendJson } from './server/http-server.js';
import { Authenticator } from './server/auth.js';
import { withOpsToken } from './server/ops-auth.js';
import { SessionRegistry } from './server/session-registry.js';
import { MemorySessionStore, RedisSessionStore, type SessionStore } from './server/session-store.js';
import { SESSIONS_PATH, sessionsRoute } from './server/sessions-api.js';
import { StreamServer } from './server/stream-server.js';
import { DashboardFeed } from './server/dashboard.js';
import { readiness } from './server/health.js';
import { Metrics } from './server/metrics.js';
import { clientAddress as forwardedClient, parseTrustedProxies } from './utils/forwarded.js';
import type { Logger } from './utils/logger.js';

export const WEB_ROOT = path.resolve(MODEL_DIR, '..', 'web');

export interface App {
  server: http.Server;
  store: SessionStore;
  drain(): Promise<void>;
  budget: FrameBudget;
  scheduler: Scheduler;
  pool: WorkerPool;
  stream: StreamServer;
  metrics: Metrics;
  /** Bound port (useful with PORT=0). */
  port: number;
  /** Bound port of the operations listener (METRICS_PORT). */
  opsPort: number;
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
  const scheduler = new Scheduler(
    pool,
    budget,
    {
      sessionQueueUnits: config.SESSION_QUEUE_UNITS,
      sessionQueueBytes: config.SESSION_QUEUE_BYTES,
      maxUnitAgeMs: config.MAX_UNIT_AGE_MS,
      framePeriodMs: 1000 / config.FPS,
      batchFrames: config.BATCH_FRAMES,
    },
    { logger },
  );
  const sessions = new SessionRegistry(config.RESUME_TTL_MS);
  const store: SessionStore = config.REDIS_URL
    ? new RedisSessionStore(config.REDIS_URL, config.SESSION_TTL_MS, config.INSTANCE_ID, logger)
    : new MemorySessionStore(config.SESSION_TTL_MS, logger);
  if (store instanceof RedisSessionStore) await store.ready(3000);
  const auth = new Authenticator({
    secret: config.AUTH_SECRET,
    jwksUrl: config.AUTH_JWKS_URL,
    audience: config.AUTH_AUDIENCE,
    issuer: config.AUTH_ISSUER,
    maxTokenSeconds: config.AUTH_MAX_TOKEN_SECONDS,
  });
  if (auth.mode === 'demo') {
    logger.warn({ event: 'demo_mode' }, 'no AUTH_SECRET or AUTH_JWKS_URL: running in demo mode, anyone may open a session');
  } else if (!config.AUTH_AUDIENCE || !config.AUTH_ISSUER) {
    // Without them a token your issuer signed for another service opens sessions here too.
    logger.warn({ event: 'auth_claims_unchecked', audience: config.AUTH_AUDIENCE ?? null, issuer: config.AUTH_ISSUER ?? null }, 'set AUTH_AUDIENCE and AUTH_ISSUER');
  }
  const load = new LoadMonitor(config.FPS, config.LATENCY_TARGET_MS);
  // What /readyz answers: a load balancer stops sending new sessions while any reason holds.
  const readyNow = () =>
    readiness({
      draining,
      workersReady: pool.readyCount,
      accepting: load.current.accepting,
      budgetUsedBytes: budget.used,
      budgetLimitBytes: budget.limitBytes,
      maxFrameBytes: config.MAX_FRAME_BYTES,
    });
  const metrics = new Metrics({
    sessions: () => {
      let attached = 0;
      for (const s of sessions.values()) if (s.attached) attached++;
      return { attached, detached: sessions.size - attached };
    },
    pool,
    models: scheduler,
    budget,
    load,
    ready: () => readyNow().ready,
    store,
  });
  const alignment = config.ALIGN_UNITS === 'true' ? new UnitAlignment<SessionPipeline>((config.BATCH_FRAMES * 1000) / config.FPS) : null;
  const pipelines = new Pipelines({
    config,
    budget,
    scheduler,
    logger,
    sessions: () => sessions.size,
    alignment,
    hooks: {
      ...metrics.pipelineHooks,
      onUnitDone: (sessionId, unit, timing) => {
        metrics.pipelineHooks.onUnitDone(sessionId, unit, timing);
        logger.debug(
          { event: 'unit_done', sessionId, seqFrom: unit.seqFrom, seqTo: unit.seqTo, frames: unit.frames.length, ...timing },
          'unit analysed',
        );
      },
    },
  });
  const modelInfo = () => {
    const info = pool.workers().find((w) => w.info)?.info;
    return info ? { name: info.model, version: info.version } : null;
  };
  const ready = () => !draining && pool.readyCount > 0;
  const trustedProxies = parseTrustedProxies(config.TRUSTED_PROXIES);
  const clientAddress = (req: http.IncomingMessage) => forwardedClient(req.socket.remoteAddress, req.headers['x-forwarded-for'], trustedProxies);
  const stream = new StreamServer({
    config,
    logger,
    sessions,
    store,
    auth,
    clientAddress,
    pipelines,
    scheduler,
    load,
    accepting: ready,
    modelInfo,
    onConnection: (ws) => metrics.countConnection(ws),
  });
  const dashboard = new DashboardFeed(metrics, metrics.sources);

  // The operations routes tell host names, pids, memory, the auth mode: served on their own listener
  // (loopback unless METRICS_TOKEN is set, see config.ts), and on PORT only behind METRICS_TOKEN.
  const healthz = (_req: http.IncomingMessage, res: http.ServerResponse) => sendJson(res, 200, { status: 'ok' });
  const opsRoutes = withOpsToken(config.METRICS_TOKEN, { '/metrics': metrics.route, ...dashboard.routes(WEB_ROOT) });
  const detailedReadyz = withOpsToken(config.METRICS_TOKEN, {
    '/readyz': (_req, res) => {
      const r = readyNow();
      sendJson(res, r.ready ? 200 : 503, {
        status: r.ready ? 'ready' : 'not_ready',
        reasons: r.reasons,
        draining,
        workers: { size: pool.size, ready: pool.readyCount, busy: pool.busyCount },
        sessions: sessions.size,
        budget: { usedBytes: budget.used, limitBytes: budget.limitBytes },
        auth: auth.mode,
        store: store.status(),
        instance: config.INSTANCE_ID,
      });
    },
  });
  const server = createHttpServer(
    {
      '/healthz': healthz,
      // For load balancers and probes: the answer is in the status code, and nothing else is said.
      '/readyz': (_req, res) => {
        const ready = readyNow().ready;
        sendJson(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not_ready' });
      },
      [`${SESSIONS_PATH}*`]: sessionsRoute(auth, sessions, store, stream.sessionOptions),
      ...(config.METRICS_TOKEN ? opsRoutes : {}),
    },
    WEB_ROOT,
    config.HTTP_HEADERS_TIMEOUT_MS,
  );
  server.on('upgrade', (req, socket, head) => {
    metrics.trackSocket(socket);
    stream.handleUpgrade(req, socket, head);
  });

  const opsServer = createHttpServer({ '/healthz': healthz, ...opsRoutes, ...detailedReadyz }, WEB_ROOT, config.HTTP_HEADERS_TIMEOUT_MS);
  const listen = (srv: http.Server, port: number, host: string) =>
    new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(port, host, () => resolve());
    });
  try {
    await listen(server, config.PORT, config.HOST);
    await listen(opsServer, config.METRICS_PORT, config.METRICS_HOST);
  } catch (err) {
    // A port taken: leave nothing running (workers, timers, the other listener) so that the process can exit.
    dashboard.close();
    stream.closeAll(CLOSE_CODES.going_away.code, 'start-up failed');
    pipelines.close();
    scheduler.close();
    for (const srv of [server, opsServer]) if (srv.listening) srv.close();
    await Promise.all([pool.close(), store.close()]);
    throw err;
  }
  const port = (server.address() as AddressInfo).port;
  const opsPort = (opsServer.address() as AddressInfo).port;
  // The URLs a person opens first: the demo on `localhost`, to which browsers give getUserMedia without TLS;
  // the dashboard on the address its listener is bound to.
  const opsHost = /^(0\.0\.0\.0|::)$/.test(config.METRICS_HOST) ? 'localhost' : config.METRICS_HOST.includes(':') ? `[${config.METRICS_HOST}]` : config.METRICS_HOST;
  const urls = { demo: `http://localhost:${port}/`, dashboard: `http://${opsHost}:${opsPort}/dashboard` };
  logger.info(
    { event: 'listening', port, opsPort, host: config.HOST, workers: pool.size, model: config.MODEL, urls },
    `jipjung ready: demo page ${urls.demo} · dashboard ${urls.dashboard}`,
  );

  return {
    server,
    budget,
    scheduler,
    pool,
    stream,
    metrics,
    port,
    opsPort,
    store,
    /** SIGTERM: stop taking sessions, answer what is held, save, close clients with `restart`. */
    async drain() {
      draining = true;
      await stream.drain(config.DRAIN_TIMEOUT_MS, config.DRAIN_RETRY_AFTER_MS);
    },
    async close() {
      draining = true;
      dashboard.close();
      stream.closeAll(CLOSE_CODES.going_away.code, 'server shutting down');
      pipelines.close();
      scheduler.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => opsServer.close(() => resolve()));
      await Promise.all([pool.close(), store.flush(1000).then(() => store.close())]);
    },
  };
}
