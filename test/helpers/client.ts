import WebSocket from 'ws';
import { encodeFrame, FORMAT_JPEG } from '../../src/handler/frame-header.js';
import { describeValue, waitFor } from './wait.js';

export type Msg = Record<string, any>;

/** A protocol v1 client for tests: records every message and close. */
export class TestClient {
  readonly messages: Msg[] = [];
  closed: { code: number; reason: string } | null = null;
  private readonly waiters = new Set<() => void>();
  private seq = 0;

  private constructor(readonly ws: WebSocket) {
    // Writes racing a server-side close fail with EPIPE; the close itself is what tests look at.
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => {
      this.messages.push(isBinary ? { type: '<binary>' } : JSON.parse(data.toString()));
      this.wake();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.wake();
    });
  }

  static async connect(url: string, hello: Msg | null = { type: 'hello' }, headers: Record<string, string> = {}): Promise<TestClient> {
    const ws = new WebSocket(url, { headers });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const client = new TestClient(ws);
    if (hello) {
      ws.send(JSON.stringify(hello));
      await client.waitFor((m) => m.type === 'welcome');
    }
    return client;
  }

  get welcome(): Msg | undefined {
    return this.messages.find((m) => m.type === 'welcome');
  }

  results(kind?: 'batch' | 'window'): Msg[] {
    return this.messages.filter((m) => m.type === 'result' && (!kind || m.kind === kind));
  }

  errors(): Msg[] {
    return this.messages.filter((m) => m.type === 'error');
  }

  sendFrame(image: Buffer, seq = this.seq++, captureTs = Date.now()): void {
    this.ws.send(encodeFrame({ format: FORMAT_JPEG, seq, captureTs }, image));
  }

  sendRaw(data: Buffer | string): void {
    this.ws.send(data);
  }

  /** Send frames at `fps` (0 = as fast as possible), cycling through `images`. */
  async stream(images: Buffer | Buffer[], count: number, fps = 0): Promise<void> {
    const list = Array.isArray(images) ? images : [images];
    for (let i = 0; i < count; i++) {
      this.sendFrame(list[i % list.length]);
      if (fps > 0) await new Promise((r) => setTimeout(r, 1000 / fps));
    }
  }

  async bye(): Promise<Msg> {
    this.ws.send(JSON.stringify({ type: 'bye' }));
    return this.waitFor((m) => m.type === 'summary');
  }

  /** Resolves with the first message (already received or future) that matches. */
  async waitFor(pred: (m: Msg) => boolean, timeoutMs = 30_000, what = 'the expected message'): Promise<Msg> {
    const found = () => this.messages.find(pred);
    await this.until(() => found() !== undefined || this.closed !== null, timeoutMs, what);
    const m = found();
    if (!m) throw new Error(`connection closed (${JSON.stringify(this.closed)}) before ${what}; last messages: ${describeValue(this.messages.slice(-5))}`);
    return m;
  }

  async waitForClose(timeoutMs = 30_000): Promise<{ code: number; reason: string }> {
    await this.until(() => this.closed !== null, timeoutMs, 'the connection to close');
    return this.closed!;
  }

  /** Resolves once `cond` holds, re-checked on every message and close (and now and then, for conditions on the server's state). */
  async until(cond: () => boolean, timeoutMs = 30_000, what = 'a condition on the messages'): Promise<void> {
    await waitFor(cond, {
      timeoutMs,
      what,
      wake: (check) => {
        this.waiters.add(check);
        return () => this.waiters.delete(check);
      },
      observed: () => ({ messages: this.messages.length, last: this.messages.slice(-3), closed: this.closed }),
    });
  }

  close(): void {
    this.ws.close();
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}
