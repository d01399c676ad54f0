/**
 * A process the bench started and will stop: when it exited, the tail of
 * its stderr, and a stop that escalates from SIGTERM to SIGKILL.
 */
import type { ChildProcess } from 'node:child_process';
import readline from 'node:readline';

export type Exit = { code: number | null; signal: string | null };

export class WatchedChild {
  /** Its last stderr lines, for the message of a failed start. */
  readonly stderr: string[] = [];
  exited: Exit | null = null;
  private readonly exitPromise: Promise<void>;

  constructor(
    readonly child: ChildProcess,
    stderrLines = 1000,
  ) {
    this.exitPromise = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.exited = { code, signal };
        resolve();
      }),
    );
    readline.createInterface({ input: child.stderr! }).on('line', (line) => {
      this.stderr.push(line);
      if (this.stderr.length > stderrLines) this.stderr.shift();
    });
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    if (this.exited) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exitPromise;
    clearTimeout(timer);
  }
}
