import type { WebSocket } from 'ws';
import type { ServerMessage } from '../protocol/server-messages.js';

/**
 * Messages to one client. While the socket has more than `limitBytes`
 * waiting to be written (a client that does not read), messages are held
 * instead of sent: a newer batch result replaces the held one (it is what
 * the student needs to see), other messages are kept up to a small bound.
 * A client that stays stuck longer than `stuckMs` is cut off, so memory
 * stays flat.
 */
const HELD_MESSAGES_MAX = 64;
const FLUSH_INTERVAL_MS = 100;

export class Outbox {
  private held: ServerMessage[] = [];
  private stuckSince: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** Batch results replaced before they could be sent. */
  coalesced = 0;

  constructor(
    private readonly ws: WebSocket,
    private readonly limitBytes: number,
    private readonly stuckMs: number,
    private readonly onStuck: () => void,
  ) {}

  send(msg: ServerMessage): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    if (this.held.length === 0 && this.ws.bufferedAmount <= this.limitBytes) {
      this.ws.send(JSON.stringify(msg));
      return;
    }
    this.hold(msg);
    this.schedule();
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.held = [];
  }

  private hold(msg: ServerMessage): void {
    if (msg.type === 'result' && msg.kind === 'batch') {
      const i = this.held.findIndex((m) => m.type === 'result' && m.kind === 'batch');
      if (i >= 0) {
        this.held.splice(i, 1);
        this.coalesced++;
        msg = { ...msg, coalesced: this.coalesced };
      }
    }
    this.held.push(msg);
    if (this.held.length > HELD_MESSAGES_MAX) this.held.shift();
    this.stuckSince ??= Date.now();
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flush();
    }, FLUSH_INTERVAL_MS);
  }

  private flush(): void {
    if (this.ws.readyState !== this.ws.OPEN) return this.close();
    while (this.held.length > 0 && this.ws.bufferedAmount <= this.limitBytes) this.ws.send(JSON.stringify(this.held.shift()));
    if (this.held.length === 0) {
      this.stuckSince = null;
      return;
    }
    if (this.stuckSince !== null && Date.now() - this.stuckSince > this.stuckMs) {
      this.close();
      this.onStuck();
      return;
    }
    this.schedule();
  }
}
