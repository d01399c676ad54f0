/**
 * A stand-in for the jipjung server whose every message the test writes:
 * it serves the real web/ files (with the server's own static handler) and
 * accepts WebSockets on /v1/stream, handing each connection to the test.
 * Used to drive the client through what the real server does not (yet)
 * send: resumed sessions, repeated results, throttles, notices, 4401.
 */
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { WEB_ROOT } from '../../src/app.js';
import { parseFrame, type FrameHeader } from '../../src/handler/frame-header.js';
import { createHttpServer } from '../../src/server/http-server.js';
import { waitFor } from '../helpers/wait.js';

export interface ScriptedConnection {
  ws: WebSocket;
  texts: Array<Record<string, any>>;
  frames: Array<{ at: number; header: FrameHeader }>;
  /** Binary messages the server's parser refused. */
  badFrames: string[];
  closed: { code: number; reason: string } | null;
  send(msg: Record<string, unknown>): void;
}

export class ScriptedServer {
  readonly connections: ScriptedConnection[] = [];
  private constructor(
    private readonly server: http.Server,
    private readonly wss: WebSocketServer,
  ) {}

  static async start(): Promise<ScriptedServer> {
    const server = createHttpServer({}, WEB_ROOT);
    const wss = new WebSocketServer({ server, path: '/v1/stream' });
    const s = new ScriptedServer(server, wss);
    wss.on('connection', (ws) => {
      const conn: ScriptedConnection = {
        ws,
        texts: [],
        frames: [],
        badFrames: [],
        closed: null,
        send: (msg) => ws.send(JSON.stringify(msg)),
      };
      ws.on('message', (data, isBinary) => {
        const buf = data as Buffer;
        if (!isBinary) {
          conn.texts.push(JSON.parse(buf.toString()));
          return;
        }
        const parsed = parseFrame(buf, 16 * 1024 * 1024);
        if (parsed.ok) conn.frames.push({ at: Date.now(), header: parsed.header });
        else conn.badFrames.push(parsed.detail);
      });
      ws.on('close', (code, reason) => (conn.closed = { code, reason: reason.toString() }));
      s.connections.push(conn);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return s;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Resolves when `cond` holds. */
  async until(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
    await waitFor(cond, { timeoutMs, what, observed: () => this.connections.map((c) => ({ texts: c.texts.length, frames: c.frames.length, closed: c.closed })) });
  }

  async connection(index: number, timeoutMs = 5000): Promise<ScriptedConnection> {
    await this.until(() => this.connections.length > index && this.connections[index].texts.length > 0, timeoutMs, `connection ${index} and its hello`);
    return this.connections[index];
  }

  async close(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    this.wss.close();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export const welcome = (sessionId: string, extra: Record<string, unknown> = {}) => ({
  type: 'welcome',
  protocol: 1,
  sessionId,
  fps: 5,
  batchFrames: 5,
  windowFrames: 50,
  maxFrameBytes: 512 * 1024,
  model: { name: 'scripted', version: '0' },
  ...extra,
});

export const batch = (resultId: number, seqFrom: number, score: number, state = 'focused') => ({
  type: 'result',
  kind: 'batch',
  resultId,
  seqFrom,
  seqTo: seqFrom + 4,
  framesAnalyzed: 5,
  score,
  state,
  signals: {},
  frames: Array.from({ length: 5 }, (_, i) => ({ seq: seqFrom + i, analysed: true, box: [0.4, 0.2, 0.12, 0.16], state, score })),
});
