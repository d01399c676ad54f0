/** What the heartbeat uses of a socket. */
export interface HeartbeatSocket {
  ping(): void;
  terminate(): void;
  on(event: 'pong', listener: () => void): unknown;
}

/**
 * Liveness of sockets: every `intervalMs` each socket is pinged, and one
 * that has not answered the previous ping is cut. A peer that vanished
 * (a laptop lid closed, a network gone) sends no close frame; without this
 * its session would stay attached, and its connection counted against its
 * address, until TCP gives up, which can take hours. The pings also keep
 * proxies that close idle connections from closing live ones.
 */
export class Heartbeat {
  private readonly alive = new WeakSet<HeartbeatSocket>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    intervalMs: number,
    /** Every socket open now. */
    private readonly sockets: () => Iterable<HeartbeatSocket>,
  ) {
    this.timer = setInterval(() => this.beat(), intervalMs);
    this.timer.unref();
  }

  /** A new socket: alive until it misses a pong. */
  watch(ws: HeartbeatSocket): void {
    this.alive.add(ws);
    ws.on('pong', () => this.alive.add(ws));
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private beat(): void {
    for (const ws of this.sockets()) {
      if (!this.alive.has(ws)) {
        ws.terminate();
        continue;
      }
      this.alive.delete(ws);
      ws.ping();
    }
  }
}
