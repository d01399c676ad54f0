/**
 * The reference server (`bench/reference/server.py`) in its own process:
 * one Python process that analyses each frame as it arrives, the baseline
 * the service is measured against with `--reference`. It answers the load
 * generator as the service does, so a step runs against either by its URL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { WatchedChild, type Exit } from './child-process.js';
import { ROOT } from './frames.js';
import type { BenchTarget } from './server-process.js';

/** Debian's interpreter: it has the model's packages and `python3-websockets`. */
export const REFERENCE_PYTHON = '/usr/bin/python3';
export const REFERENCE_SCRIPT = path.join(ROOT, 'bench', 'reference', 'server.py');

export interface ReferenceOptions {
  /** `package.module:ClassName`, the model without the bench's timing wrapper. */
  model: string;
  /** A directory to put on PYTHONPATH besides model/ (the bench's own models). */
  modelPath?: string;
  startTimeoutMs?: number;
}

export class ReferenceServer implements BenchTarget {
  private readonly process: WatchedChild;
  private port = 0;

  private constructor(private readonly child: ChildProcess) {
    this.process = new WatchedChild(child);
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

  /** Start it and wait for the line that says it listens (the model is loaded by then). */
  static async start(o: ReferenceOptions): Promise<ReferenceServer> {
    const pythonPath = [path.join(ROOT, 'model'), ...(o.modelPath ? [o.modelPath] : [])].join(path.delimiter);
    const child = spawn(REFERENCE_PYTHON, [REFERENCE_SCRIPT, '--host', '127.0.0.1', '--port', '0', '--model', o.model], {
      cwd: ROOT,
      env: { ...process.env, PYTHONPATH: pythonPath, PYTHONUNBUFFERED: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const server = new ReferenceServer(child);
    const port = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), o.startTimeoutMs ?? 120_000);
      const lines = readline.createInterface({ input: child.stdout! });
      lines.on('line', (line) => {
        try {
          const msg = JSON.parse(line);
          if (msg.event === 'listening') {
            clearTimeout(timer);
            resolve(msg.port);
          }
        } catch {
          // a line of the model's own: not the one awaited
        }
      });
      child.once('exit', () => {
        clearTimeout(timer);
        resolve(null);
      });
    });
    if (port === null) {
      await server.stop();
      throw new Error(`the reference server did not start: ${server.stderr.slice(-5).join('\n')}`);
    }
    server.port = port;
    return server;
  }

  /** The model runs in the server's own process: no workers. */
  workerPids(): number[] {
    return [];
  }

  async metrics(): Promise<string | null> {
    return null;
  }

  /** Its stderr lines (tracebacks, warnings), counted as one kind of event. */
  events(): Record<string, number> {
    return this.stderr.length > 0 ? { stderr: this.stderr.length } : {};
  }

  stop(graceMs = 5000): Promise<void> {
    return this.process.stop(graceMs);
  }
}
