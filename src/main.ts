import { ConfigError, loadConfig } from './config/config.js';
import { startApp, type App } from './app.js';
import { createLogger, wantsPretty, type Logger } from './utils/logger.js';

/**
 * What a fault is logged as: its type, message and stack, built here
 * rather than by the logger's error serialiser, which would copy every
 * field of the error (a buffer of frame bytes among them, if one held it).
 */
function describeFault(reason: unknown): { type: string; message?: string; stack?: string } {
  if (!(reason instanceof Error)) return { type: typeof reason };
  return { type: reason.name, message: reason.message.slice(0, 1000), stack: reason.stack?.slice(0, 4000) };
}

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env, process.argv.slice(2));
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger: Logger = createLogger(config.LOG_LEVEL, undefined, { pretty: wantsPretty(config.LOG_PRETTY, process.stdout.isTTY) });
  let app: App | null = null;
  let stopping = false;

  /** Drain (sessions answered, saved, clients told to resume elsewhere), close, exit. */
  const stop = (reason: { signal: string } | { cause: string }, exitCode: number) => {
    if (stopping) return;
    stopping = true;
    logger.info({ event: 'shutdown', ...reason }, 'shutting down');
    const exit = (code: number) => {
      logger.flush();
      process.exit(code);
    };
    const timer = setTimeout(() => {
      logger.error({ event: 'shutdown_timeout' }, 'drain timed out');
      exit(1);
    }, config.DRAIN_TIMEOUT_MS + 2000);
    timer.unref();
    if (!app) return exit(exitCode);
    const running = app;
    running
      .drain()
      .then(() => running.close())
      .then(
        () => {
          logger.info({ event: 'stopped', exitCode }, 'stopped');
          exit(exitCode);
        },
        (err: unknown) => {
          logger.error({ event: 'error', fault: describeFault(err) }, 'shutdown failed');
          exit(1);
        },
      );
  };

  // A bug that escaped every handler leaves the process in a state nobody
  // planned for: it is logged, the sessions are drained (so their clients
  // resume on another instance), and the process exits 1 for its
  // supervisor to restart it. A second fault during the drain is logged only.
  for (const [name, event] of [
    ['unhandledRejection', 'unhandled_rejection'],
    ['uncaughtException', 'uncaught_exception'],
  ] as const) {
    process.on(name, (reason: unknown) => {
      logger.fatal({ event, fault: describeFault(reason) }, 'a fault escaped every handler: draining, then exiting 1');
      stop({ cause: event }, 1);
    });
  }

  try {
    app = await startApp(config, logger);
  } catch (err) {
    logger.fatal({ event: 'error', err }, 'start-up failed');
    logger.flush();
    process.exitCode = 1;
    return;
  }
  process.on('SIGINT', () => stop({ signal: 'SIGINT' }, 0));
  process.on('SIGTERM', () => stop({ signal: 'SIGTERM' }, 0));
}

void main();
