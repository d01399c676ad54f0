/**
 * The server under test: `node dist/main.js` in its own process, so that
 * its CPU and memory are its own, with its workers as its children.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { WatchedChild, type Exit } from './child-process.js';
import { SERVER_NODE_FLAGS } from '../../dist/node-flags.js';
import { ROOT } from './frames.js';

export interface ServerOptions {
  workers: number;
  model: string;
  modelPath?: string;
  modelOptions: string;
  /** Extra settings (override the bench's). */
  env: Record<string, string>;
  /** Extra arguments to node, before the script (e.g. --cpu-prof). */
  nodeArgs: string[];
  startTimeoutMs?: number;
  /** Checkout whose `dist/main.js` to run (default: this one); for before/after comparisons of a server change. */
  root?: string;
}

/** Settings the bench gives every instance: all load comes from one address, and the logs stay quiet. */
export const BENCH_SERVER_ENV: Record<string, string> = {
  HOST: '127.0.0.1',
  LOG_LEVEL: 'warn',
  LOG_PRETTY: 'false',
  UPGRADES_PER_IP_PER_MINUTE: '100000',
  MAX_CONNECTIONS_PER_IP: '100000',
};

/**
 * `n` distinct free TCP ports on loopback. Each listener is held until all
 * are chosen: one closed before the next is opened can be handed out again.
 */
export async function freePorts(n: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const srv = net.createServer();
      servers.push(srv);
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, '127.0.0.1', () => resolve());
      });
    }
    return servers.map((srv) => (srv.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map((srv) => new Promise((resolve) => srv.close(resolve))));
  }
}

/** Pids of the process's children (all threads), from /proc. */
export function childPids(pid: number, procRoot = '/proc'): number[] {
  const out: number[] = [];
  try {
    for (const tid of fs.readdirSync(`${procRoot}/${pid}/task`)) {
      const text = fs.readFileSync(`${procRoot}/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text) for (const p of text.split(/\s+/)) out.push(Number(p));
    }
  } catch {
    // the process is gone
  }
  return out;
}

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

/** What a step runs against and samples: the service, or the reference server. */
export interface BenchTarget {
  readonly url: string;
  readonly pid: number;
  readonly exited: Exit | null;
  /** Processes that do the analysis besides `pid`. */
  workerPids(): number[];
  /** Prometheus text, or null when there is none. */
  metrics(): Promise<string | null>;
  /** Log events counted by kind. */
  events(): Record<string, number>;
  stop(): Promise<void>;
}

export class ServerUnderTest implements BenchTarget {
  /** Log lines (all at warn or above), parsed. */
  readonly logs: Array<Record<string, any>> = [];
  private readonly process: WatchedChild;

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    readonly opsPort: number,
  ) {
    this.process = new WatchedChild(child);
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        this.logs.push(JSON.parse(line));
      } catch {
        this.logs.push({ level: 'text', msg: line });
      }
      if (this.logs.length > 10_000) this.logs.splice(0, 5_000);
    });
  }

  get exited(): Exit | null {
    return this.process.exited;
  }

  get stderr(): string[] {
    return this.process.stderr;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/v1/stream`;
  }

  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The operations listener (/metrics, /dashboard), on loopback. */
  get opsBase(): string {
    return `http://127.0.0.1:${this.opsPort}`;
  }

  static async start(o: ServerOptions): Promise<ServerUnderTest> {
    const [port, opsPort] = await freePorts(2);
    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      ...BENCH_SERVER_ENV,
      PORT: String(port),
      METRICS_PORT: String(opsPort),
      METRICS_HOST: '127.0.0.1',
      WORKERS: String(o.workers),
      MODEL: o.model,
      MODEL_OPTIONS: o.modelOptions,
      ...(o.modelPath ? { MODEL_PATH: o.modelPath } : {}),
      ...o.env,
    };
    const root = o.root ?? ROOT;
    // The flags `npm start` runs the server with; `--server-node-args` come after them and win.
    const child = spawn(process.execPath, [...SERVER_NODE_FLAGS, ...o.nodeArgs, path.join(root, 'dist', 'main.js')], {
      cwd: root,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const server = new ServerUnderTest(child, port, opsPort);
    const deadline = Date.now() + (o.startTimeoutMs ?? 120_000);
    while (Date.now() < deadline) {
      if (server.exited) break;
      try {
        const res = await fetch(`${server.base}/readyz`);
        if (res.status === 200) return server;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    await server.stop();
    throw new Error(`the server did not become ready: ${[...server.stderr.slice(-5), ...server.logs.slice(-5).map((l) => JSON.stringify(l))].join('\n')}`);
  }

  /** Pids of the Python workers running now. */
  workerPids(): number[] {
    return childPids(this.pid).filter((p) => cmdline(p).includes('jipjung_model.worker'));
  }

  /** The Prometheus text of /metrics, or null when it cannot be read. */
  async metrics(): Promise<string | null> {
    try {
      const res = await fetch(`${this.opsBase}/metrics`);
      return res.ok ? await res.text() : null;
    } catch {
      return null;
    }
  }

  /** Log lines counted by event (worker_exit, slow_consumer, overload …). */
  events(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const l of this.logs) {
      const e = l.event ?? l.level;
      out[e] = (out[e] ?? 0) + 1;
    }
    return out;
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs = 15_000): Promise<void> {
    return this.process.stop(graceMs);
  }
}
