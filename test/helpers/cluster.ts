import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import WebSocket from 'ws';
import { encodeFrame, FORMAT_JPEG } from '../../src/handler/frame-header.js';
import { freePorts } from '../../bench/src/server-process.js';
import { SERVER_NODE_FLAGS } from '../../src/node-flags.js';
import { TEST_DIR, BRIGHTNESS_MODEL } from './app.js';
import { waitFor } from './wait.js';

const ROOT = path.resolve(TEST_DIR, '..');
/** Instances started by this test process, for unique instance ids. */
let instances = 0;

/** A free TCP port on loopback. */
export const freePort = async (): Promise<number> => (await freePorts(1))[0];

const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });

/** Throws when a process that should be serving has exited: waiting on would only time out. `stderr`: its last lines, if kept. */
function exitedEarly(proc: ChildProcess, name: string, stderr?: string[]): false {
  if (proc.exitCode !== null || proc.signalCode !== null) {
    const tail = stderr ? `; its stderr ended:\n${stderr.join('\n')}` : '';
    throw new Error(`${name} exited (${proc.exitCode ?? proc.signalCode}) before it was ready${tail}`);
  }
  return false;
}

const listening = (proc: ChildProcess, port: number, name: string) => exitedEarly(proc, name) || portOpen(port);

/** A real redis-server on a loopback port, without persistence. */
export class RedisServer {
  private proc: ChildProcess | null = null;
  constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const proc = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    this.proc = proc;
    await waitFor(() => listening(proc, this.port, 'redis-server'), { timeoutMs: 10_000, what: `redis-server on ${this.port}` });
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    this.proc = null;
    if (!proc || proc.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGKILL');
    });
  }
}

/**
 * One jipjung instance as its own process (`node dist/main.js`), its logs parsed.
 * It binds its ports itself (PORT=0, METRICS_PORT=0) and says which in its
 * `listening` log line: ports picked here and bound later could collide.
 */
export class Instance {
  private proc: ChildProcess | null = null;
  readonly logs: Array<Record<string, any>> = [];
  exited: Promise<number | null> = Promise.resolve(null);
  /** Its HTTP and WebSocket port, known once started. */
  port = 0;
  /** Port of its operations listener (/metrics, the detailed /readyz), known once started. */
  opsPort = 0;
  /** The last lines it wrote to stderr, for a start-up failure's message. */
  private stderrTail: string[] = [];

  constructor(private readonly env: Record<string, string> = {}) {}

  /** Base URL of its operations listener. */
  get ops(): string {
    return `http://127.0.0.1:${this.opsPort}`;
  }

  /** URL of its stream endpoint. */
  get streamUrl(): string {
    return `ws://127.0.0.1:${this.port}/v1/stream`;
  }

  async start(): Promise<void> {
    const proc = spawn(process.execPath, [...SERVER_NODE_FLAGS, path.join(ROOT, 'dist', 'main.js')], {
      cwd: ROOT,
      env: {
        ...process.env,
        PORT: '0',
        HOST: '127.0.0.1',
        WORKERS: '1',
        LOG_LEVEL: 'info',
        ...BRIGHTNESS_MODEL,
        TRUSTED_PROXIES: '127.0.0.1',
        UPGRADES_PER_IP_PER_MINUTE: '100000',
        MAX_CONNECTIONS_PER_IP: '1000',
        INSTANCE_ID: `test-${process.pid}-${++instances}`,
        METRICS_PORT: '0',
        ...this.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    this.exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
    readline.createInterface({ input: proc.stderr! }).on('line', (line) => {
      process.stderr.write(`${line}\n`);
      this.stderrTail.push(line);
      if (this.stderrTail.length > 20) this.stderrTail.shift();
    });
    readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
      try {
        this.logs.push(JSON.parse(line));
      } catch {
        /* not a log line */
      }
    });
    const ready = await waitFor(() => exitedEarly(proc, 'the instance', this.stderrTail) || this.logs.find((l) => l.event === 'listening'), {
      timeoutMs: 30_000,
      intervalMs: 50,
      what: 'the instance to be listening',
    });
    this.port = ready.port;
    this.opsPort = ready.opsPort;
    await waitFor(async () => (await fetch(`http://127.0.0.1:${this.port}/readyz`).catch(() => null))?.status === 200, {
      timeoutMs: 10_000,
      intervalMs: 50,
      what: `instance on ${this.port} to be ready`,
    });
  }

  signal(sig: NodeJS.Signals): void {
    this.proc?.kill(sig);
  }

  async stop(): Promise<void> {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill('SIGKILL');
    await this.exited;
  }
}

/** Real nginx in front of the instances, from deploy/nginx/jipjung.conf with the test's ports. */
export class Nginx {
  private proc: ChildProcess | null = null;
  private dir = '';
  constructor(
    readonly port: number,
    private readonly upstreams: number[],
  ) {}

  async start(): Promise<void> {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jipjung-nginx-'));
    const site = fs
      .readFileSync(path.join(ROOT, 'deploy', 'nginx', 'jipjung.conf'), 'utf8')
      .replace(/^\s*server 127\.0\.0\.1:\d+ .*$/gm, '')
      .replace(/least_conn;/, `least_conn;\n${this.upstreams.map((p) => `    server 127.0.0.1:${p} max_fails=2 fail_timeout=10s;`).join('\n')}`)
      .replace(/listen 80;/, `listen 127.0.0.1:${this.port};`);
    fs.writeFileSync(path.join(this.dir, 'jipjung.conf'), site);
    fs.writeFileSync(
      path.join(this.dir, 'nginx.conf'),
      [
        'daemon off;',
        'worker_processes 1;',
        `pid ${this.dir}/nginx.pid;`,
        `error_log ${this.dir}/error.log warn;`,
        'events { worker_connections 1024; }',
        'http {',
        '  access_log off;',
        `  client_body_temp_path ${this.dir}/body;`,
        `  proxy_temp_path ${this.dir}/proxy;`,
        `  fastcgi_temp_path ${this.dir}/fastcgi;`,
        `  uwsgi_temp_path ${this.dir}/uwsgi;`,
        `  scgi_temp_path ${this.dir}/scgi;`,
        `  include ${this.dir}/jipjung.conf;`,
        '}',
      ].join('\n'),
    );
    const proc = spawn('nginx', ['-p', this.dir, '-c', path.join(this.dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'inherit'] });
    this.proc = proc;
    await waitFor(() => listening(proc, this.port, 'nginx'), { timeoutMs: 10_000, what: `nginx on ${this.port}` });
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/v1/stream`;
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    if (proc && proc.exitCode === null) {
      await new Promise<void>((resolve) => {
        proc.once('exit', () => resolve());
        // Fast shutdown: a graceful one (SIGQUIT) would wait for every client connection to end.
        proc.kill('SIGTERM');
      });
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export type Msg = Record<string, any>;

/**
 * A student's client that keeps going across instances: it sends a frame
 * every `intervalMs` while connected (its own seq counter never restarts),
 * and after an unexpected close reconnects and resumes with its sessionId,
 * resumeToken and the last resultId it has.
 */
export class ResumingClient {
  /** Every result received, in arrival order (duplicates included). */
  readonly received: Msg[] = [];
  readonly closes: Array<{ code: number; reason: string }> = [];
  readonly welcomes: Msg[] = [];
  summary: Msg | null = null;
  sent = 0;
  private ws: WebSocket | null = null;
  private sessionId?: string;
  private resumeToken?: string;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly url: string,
    private readonly images: Buffer[],
    private readonly intervalMs = 100,
  ) {}

  get lastResultId(): number {
    return this.received.reduce((m, r) => Math.max(m, r.resultId), 0);
  }

  /** Frames sent after the last one a result received covers: what an instance that dies now holds unanswered. */
  get sentPastResults(): number {
    const covered = this.received.reduce((m, r) => Math.max(m, r.seqTo ?? -1), -1);
    return this.sent - 1 - covered;
  }

  /** Back after a close, on a resumed session, with a result made since (not one replayed from before). */
  get resumedWithNewResult(): boolean {
    const welcome = this.welcomes.at(-1);
    return this.welcomes.length > 1 && welcome !== undefined && welcome.resumed === true && this.lastResultId >= welcome.nextResultId;
  }

  /** resultIds of the union of results, in order. */
  resultIds(): number[] {
    return [...new Set(this.received.map((r) => r.resultId))].sort((a, b) => a - b);
  }

  async connect(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.open();
        return;
      } catch (err) {
        if (attempt >= 40 || this.stopped) throw err;
        // The jittered backoff of a real client: twenty clients retrying in step would all hit the instance
        // that is going away at once. It paces the client; no test waits on it.
        await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
      }
    }
  }

  /** Stop sending, say bye, and resolve with the summary. */
  async finish(timeoutMs = 15_000): Promise<Msg> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await waitFor(() => this.ws?.readyState === WebSocket.OPEN, { timeoutMs, what: 'a connection to say bye on', observed: () => this.closes });
    this.ws!.send(JSON.stringify({ type: 'bye' }));
    await waitFor(() => this.summary !== null, { timeoutMs, what: 'the summary', observed: () => ({ closes: this.closes, results: this.received.length }) });
    return this.summary!;
  }

  /** Stop sending and reconnecting, and drop the connection (cleanup after a failed test). */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.ws?.terminate();
  }

  private open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      let welcomed = false;
      ws.on('error', () => {});
      ws.on('unexpected-response', (_req, res) => {
        res.resume();
        reject(new Error(`upgrade refused: ${res.statusCode}`));
      });
      ws.on('open', () => {
        const hello: Msg = { type: 'hello' };
        if (this.sessionId) Object.assign(hello, { sessionId: this.sessionId, resumeToken: this.resumeToken, lastResultId: this.lastResultId });
        ws.send(JSON.stringify(hello));
      });
      ws.on('message', (data) => {
        const msg = JSON.parse(data.toString()) as Msg;
        if (msg.type === 'welcome') {
          welcomed = true;
          this.welcomes.push(msg);
          this.sessionId = msg.sessionId;
          this.resumeToken = msg.resumeToken;
          this.ws = ws;
          if (!this.stopped && !this.timer) this.timer = setInterval(() => this.tick(), this.intervalMs);
          resolve();
        } else if (msg.type === 'result') this.received.push(msg);
        else if (msg.type === 'summary') this.summary = msg;
      });
      ws.on('close', (code, reason) => {
        if (!welcomed) {
          reject(new Error(`closed before welcome: ${code}`));
          return;
        }
        this.closes.push({ code, reason: reason.toString() });
        if (this.ws === ws) this.ws = null;
        if (!this.stopped && code !== 1000) void this.connect().catch(() => {});
      });
    });
  }

  private tick(): void {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return; // nothing is sent while away
    const seq = this.sent++;
    this.ws.send(encodeFrame({ format: FORMAT_JPEG, seq, captureTs: Date.now() }, this.images[seq % this.images.length]));
  }
}
