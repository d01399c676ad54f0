import os from 'node:os';
import { z } from 'zod';
import { trustedProxiesProblems } from '../utils/forwarded.js';

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/**
 * Every setting, read from environment variables (or the matching
 * `--kebab-case` flag, which wins). Names carry their unit. docs/config.md
 * is checked against this schema by test/config.test.ts.
 */
export const configSchema = z.object({
  PORT: int(0, 65535).default(8080).describe('TCP port of the HTTP and WebSocket server.'),
  HOST: z.string().min(1).default('0.0.0.0').describe('Address to listen on.'),
  LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .default('info')
    .describe('pino log level.'),
  WORKERS: int(1, 256).default(Math.max(1, os.availableParallelism())).describe('Python worker processes (default: one per CPU core).'),
  PYTHON: z.string().min(1).optional().describe('Python interpreter for the workers (default: the first candidate that imports cv2 and numpy).'),
  MODEL: z
    .string()
    .regex(/^[A-Za-z_][\w.]*:[A-Za-z_]\w*$/, 'must be package.module:ClassName')
    .default('jipjung_model.default_model:ConcentrationModel')
    .describe('Model class, as `package.module:ClassName`.'),
  MODEL_PATH: z.string().optional().describe('Extra directory put first on the workers\' PYTHONPATH, for models outside this package.'),
  MODEL_OPTIONS: z
    .string()
    .default('{}')
    .refine((s) => {
      try {
        const v = JSON.parse(s);
        return typeof v === 'object' && v !== null && !Array.isArray(v);
      } catch {
        return false;
      }
    }, 'must be a JSON object')
    .describe('JSON object passed to the model\'s load().'),
  FPS: int(1, 30).default(5).describe('Frames per second the client is asked to send.'),
  BATCH_FRAMES: int(1, 300).default(5).describe('Frames per `batch` result.'),
  WINDOW_FRAMES: int(1, 3000).default(50).describe('Frames per `window` result; a multiple of BATCH_FRAMES.'),
  MAX_FRAME_BYTES: int(1024, 16 * 1024 * 1024).default(512 * 1024).describe('Largest frame message accepted, header included, in bytes.'),
  HELLO_TIMEOUT_MS: int(100, 60_000).default(5000).describe('Time a new connection has to send `hello`.'),
  HEARTBEAT_INTERVAL_MS: int(1000, 300_000).default(15_000).describe('Interval of WebSocket pings; a connection that misses one pong is closed.'),
  AUTH_SECRET: z.string().min(32, 'must be at least 32 characters').optional().describe('HS256 secret for hello tokens. Without it (and without AUTH_JWKS_URL) the server runs in demo mode: no authentication.'),
  AUTH_JWKS_URL: z.url().optional().describe('JWKS URL for RS256/ES256 hello tokens.'),
  AUTH_AUDIENCE: z.string().optional().describe('Required `aud` of tokens, if set (a token without it is refused).'),
  AUTH_ISSUER: z.string().optional().describe('Required `iss` of tokens, if set (a token without it is refused).'),
  AUTH_MAX_TOKEN_SECONDS: int(60, 31 * 86_400)
    .default(86_400)
    .describe('Longest lifetime (`exp` − `iat`, or `exp` − now without `iat`) of a token accepted; a longer-lived one is refused.'),
  ALLOWED_ORIGINS: z.string().default('').describe('Comma-separated exact Origin values allowed to open a stream (empty: any origin). Others get 403 at the upgrade.'),
  MAX_SESSIONS_PER_USER: int(1, 10_000)
    .default(3)
    .describe('Sessions one user may hold on an instance, attached or waiting to be resumed; a new one past it ends the user\'s longest-detached session, or is refused when all are attached.'),
  MAX_CONNECTIONS_PER_IP: int(1, 100_000).default(50).describe('WebSocket connections one client address (an IPv6 client\'s /64) may have open at once; more get 429 at the upgrade.'),
  UPGRADES_PER_IP_PER_MINUTE: int(1, 100_000).default(120).describe('WebSocket upgrades one client address (an IPv6 client\'s /64) may make in a minute (burst of a tenth of it); more get 429.'),
  HTTP_HEADERS_TIMEOUT_MS: int(100, 120_000).default(10_000).describe('Time a client has to send its HTTP request headers (slow-loris guard).'),
  METRICS_PORT: int(0, 65535).default(9464).describe('Port of the operations listener: /metrics, /dashboard, the detailed /readyz (0: any free port).'),
  METRICS_HOST: z.string().min(1).default('127.0.0.1').describe('Address of the operations listener. Other than loopback only with METRICS_TOKEN.'),
  METRICS_TOKEN: z
    .string()
    .min(16, 'must be at least 16 characters')
    .optional()
    .describe('Require `Authorization: Bearer <token>` for the operations routes, on both listeners; with it they are served on PORT too.'),
  RESUME_TTL_MS: int(0, 3_600_000).default(120_000).describe('Time a session waits for its client to resume after an unexpected disconnect.'),
  WORKER_START_TIMEOUT_MS: int(1000, 600_000).default(60_000).describe('Time a worker has to load its model and say ready.'),
  WORKER_REQUEST_TIMEOUT_MS: int(100, 600_000).default(10_000).describe('Time a worker has to answer one unit before it is killed and replaced.'),
  WORKER_MAX_RESTARTS: int(0, 1000).default(5).describe('Restarts allowed within WORKER_RESTART_WINDOW_MS before restarts back off.'),
  WORKER_RESTART_WINDOW_MS: int(1000, 3_600_000).default(60_000).describe('Window of the restart-intensity limit.'),
  WORKER_BACKOFF_MAX_MS: int(100, 600_000).default(30_000).describe('Longest delay between restarts of a crash-looping worker.'),
  MAX_IMAGE_WIDTH: int(16, 16384).default(1920).describe('Largest image width accepted, in pixels (checked in the JPEG header before decoding).'),
  MAX_IMAGE_HEIGHT: int(16, 16384).default(1920).describe('Largest image height accepted, in pixels.'),
  REORDER_MAX_FRAMES: int(0, 100).default(5).describe('Frames held waiting for a missing earlier seq before the gap is given up as lost.'),
  REORDER_MAX_WAIT_MS: int(0, 10_000).default(400).describe('Longest a frame waits for a missing earlier seq.'),
  RESYNC_GAP_FRAMES: int(2, 1_000_000).default(150).describe('A seq jump at least this far (ahead or back) re-syncs the session instead of counting lost frames.'),
  CAPTURE_TS_TOLERANCE_MS: int(100, 3_600_000).default(30_000).describe('Largest distance of a captureTs from the session\'s estimated clock.'),
  RATE_BURST_FRAMES: int(1, 1000).default(10).describe('Frames a client may send above its fps in a burst before they are dropped as rate_limited.'),
  RATE_ABUSE_FRAMES: int(1, 100_000).default(100).describe('rate_limited frames within 10 s that close the session with 1008.'),
  SESSION_QUEUE_UNITS: int(1, 100).default(4).describe('Units a session may have waiting for a worker before the oldest is shed.'),
  SESSION_QUEUE_BYTES: int(64 * 1024, 1024 ** 3).default(4 * 1024 * 1024).describe('Bytes of frames a session may have waiting for a worker before the oldest unit is shed.'),
  FRAME_BUDGET_BYTES: int(1024 * 1024, 64 * 1024 ** 3)
    .default(Math.min(1024 ** 3, Math.max(64 * 1024 ** 2, Math.round(os.totalmem() * 0.02))))
    .describe('Bytes of frames all sessions together may hold (default: 2% of memory, 64 MiB to 1 GiB).'),
  MAX_UNIT_AGE_MS: int(100, 600_000).default(3000).describe('A frame that waited this long for a worker is shed: a fresh result is worth more than a stale one.'),
  LATENCY_TARGET_MS: int(50, 60_000).default(1000).describe('Queue wait above which the instance counts as overloaded and throttles clients; a queue that keeps growing past half of it already steps them back to what the workers analyse.'),
  ALIGN_UNITS: z
    .enum(['true', 'false'])
    .default('true')
    .describe('Ask a client whose units complete close to another session\'s to delay its capture once (an `align` message), so that the sessions\' units reach the workers spread over the second.'),
  SEND_BUFFER_BYTES: int(16 * 1024, 64 * 1024 ** 2).default(1024 * 1024).describe('Bytes queued to a client above which its batch results are coalesced.'),
  SLOW_CLIENT_TIMEOUT_MS: int(1000, 600_000).default(30_000).describe('Time a client may stay above SEND_BUFFER_BYTES before it is disconnected.'),
  DRAIN_TIMEOUT_MS: int(1000, 300_000).default(20_000).describe('On SIGTERM/SIGINT: time to finish the units held, save sessions and close clients (1012) before the process exits regardless.'),
  DRAIN_RETRY_AFTER_MS: int(0, 60_000).default(1000).describe('Retry delay suggested to clients in the 1012 close reason when draining.'),
  REDIS_URL: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL').optional().describe('Redis for session state shared by instances (resume anywhere). Without it, session state stays in this instance.'),
  INSTANCE_ID: z.string().min(1).max(64).default(`${os.hostname()}-${process.pid}`).describe('Name of this instance in logs and in the session store (default: host name and pid).'),
  SESSION_TTL_MS: int(10_000, 7 * 24 * 3_600_000).default(3_600_000).describe('How long a session\'s stored state outlives its last update.'),
  // Observability
  LOG_PRETTY: z
    .enum(['auto', 'true', 'false'])
    .default('auto')
    .describe('Coloured, human-readable log lines instead of JSON; `auto`: only when stdout is a terminal.'),
  TRUSTED_PROXIES: z
    .string()
    .optional()
    .superRefine((list, ctx) => {
      for (const problem of trustedProxiesProblems(list ?? '')) ctx.addIssue({ code: 'custom', message: problem });
    })
    .describe('Comma-separated IP addresses or CIDR ranges of reverse proxies whose X-Forwarded-For is believed (default: none, the peer address is the client).'),
});

export type Config = Readonly<z.infer<typeof configSchema>>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/** Whether `host` (an address or `localhost`) is reachable only from this machine. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || /^::ffff:127\./.test(h);
}

const flagToKey = (flag: string) => flag.replace(/^--/, '').replace(/-/g, '_').toUpperCase();

/** Parse `--port 9000` / `--port=9000` flags into schema keys. */
export function parseFlags(argv: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) continue;
    const eq = arg.indexOf('=');
    if (eq > 0) out[flagToKey(arg.slice(0, eq))] = arg.slice(eq + 1);
    else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) out[flagToKey(arg)] = argv[++i];
    else out[flagToKey(arg)] = 'true';
  }
  return out;
}

/** Validate once; report every problem together; freeze the result. */
export function loadConfig(
  env: Record<string, string | undefined> = process.env,
  argv: readonly string[] = [],
): Config {
  const keys = Object.keys(configSchema.shape);
  const flags = parseFlags(argv);
  const problems: string[] = [];
  for (const key of Object.keys(flags)) {
    if (!keys.includes(key)) problems.push(`--${key.toLowerCase().replace(/_/g, '-')}: unknown flag`);
  }
  const input: Record<string, string> = {};
  for (const key of keys) {
    const value = flags[key] ?? env[key];
    if (value !== undefined && value !== '') input[key] = value;
  }
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(`${issue.path.join('.')}: ${issue.message}`);
  } else {
    if (parsed.data.WINDOW_FRAMES % parsed.data.BATCH_FRAMES !== 0) {
      problems.push(`WINDOW_FRAMES: ${parsed.data.WINDOW_FRAMES} is not a multiple of BATCH_FRAMES (${parsed.data.BATCH_FRAMES})`);
    }
    // The operations routes tell host names, pids and memory: off loopback, only to whoever has the token.
    if (!isLoopback(parsed.data.METRICS_HOST) && !parsed.data.METRICS_TOKEN) {
      problems.push(`METRICS_HOST: ${parsed.data.METRICS_HOST} is not a loopback address; set METRICS_TOKEN to serve the operations routes there`);
    }
    if (parsed.data.METRICS_PORT !== 0 && parsed.data.METRICS_PORT === parsed.data.PORT) {
      problems.push(`METRICS_PORT: must differ from PORT (${parsed.data.PORT})`);
    }
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);
  return Object.freeze(parsed.data);
}
