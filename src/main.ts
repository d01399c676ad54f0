import { ConfigError, loadConfig } from './config/config.js';
import { startApp } from './app.js';
import { createLogger, wantsPretty } from './utils/logger.js';

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
  const logger = createLogger(config.LOG_LEVEL, undefined, { pretty: wantsPretty(config.LOG_PRETTY, process.stdout.isTTY) });
  let app;
  try {
    app = await startApp(config, logger);
  } catch (err) {
    logger.fatal({ event: 'error', err }, 'start-up failed');
    logger.flush();
    process.exitCode = 1;
    return;
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ event: 'shutdown', signal }, 'shutting down');
    const timer = setTimeout(() => {
      logger.error({ event: 'shutdown_timeout' }, 'drain timed out');
      logger.flush();
      process.exit(1);
    }, config.DRAIN_TIMEOUT_MS + 2000);
    timer.unref();
    app
      .drain()
      .then(() => app.close())
      .then(() => {
        logger.info({ event: 'stopped' }, 'stopped');
        logger.flush();
        process.exit(0);
      });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

void main();
