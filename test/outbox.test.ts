import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { batchResult, windowResult as windowMessage, type Outcome } from '../src/protocol/server-messages.js';
import { Outbox } from '../src/server/outbox.js';
import { waitFor } from './helpers/wait.js';

/** A real server-side socket whose client stops reading (its TCP socket paused). */
async function stalledPair(): Promise<{ server: WebSocket; client: WebSocket; received: any[]; wss: WebSocketServer }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
  await new Promise((r) => wss.once('listening', r));
  const serverSide = new Promise<WebSocket>((resolve) => wss.once('connection', resolve));
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, { perMessageDeflate: false });
  const received: any[] = [];
  client.on('message', (d) => received.push(JSON.parse(d.toString())));
  await new Promise((r) => client.once('open', r));
  const server = await serverSide;
  (client as unknown as { _socket: { pause(): void } })._socket.pause();
  return { server, client, received, wss };
}

const big = 'x'.repeat(256 * 1024);
const counts = { lost: 0, rejected: 0, duplicate: 0, late: 0, rateLimited: 0, shed: 0 };
const outcome = (signals: Record<string, unknown>): Outcome => ({ score: 80, state: 'focused', signals });
const batch = (resultId: number) =>
  batchResult({ resultId, seqFrom: 0, seqTo: 4, framesAnalysed: 0, outcome: outcome({ pad: big }), counts, frames: [], seqs: [] });
const windowResult = (resultId: number) => windowMessage({ resultId, seqFrom: 0, seqTo: 49, framesAnalysed: 0, outcome: outcome({}), counts });

let cleanup: Array<() => void> = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

describe('results to a client that does not read', () => {
  it('are coalesced: the newest batch result replaces held ones, window results are kept, memory stays bounded', async () => {
    const { server, client, received, wss } = await stalledPair();
    cleanup.push(() => wss.close(), () => client.terminate());
    let stuck = 0;
    const outbox = new Outbox(server, 64 * 1024, 60_000, () => stuck++);
    // Until the kernel buffers fill, messages go out; after that they are held.
    let id = 1;
    while (server.bufferedAmount <= 64 * 1024 && id < 500) outbox.send(batch(id++));
    expect(server.bufferedAmount).toBeGreaterThan(64 * 1024);
    const bufferedBefore = server.bufferedAmount;
    const firstHeld = id;
    for (let i = 0; i < 50; i++) outbox.send(batch(id++));
    outbox.send(windowResult(id++));
    outbox.send(batch(id++));
    // Nothing more was queued on the socket: at most one batch and the window result are held.
    expect(server.bufferedAmount).toBe(bufferedBefore);
    expect(outbox.coalesced).toBe(50);
    expect(stuck).toBe(0);

    (client as unknown as { _socket: { resume(): void } })._socket.resume();
    await waitFor(() => received.some((m) => m.resultId === id - 1), {
      what: `the held batch result ${id - 1}`,
      observed: () => received.slice(-3).map((m) => [m.kind, m.resultId]),
    });
    const late = received.filter((m) => m.resultId >= firstHeld);
    expect(late.map((m) => [m.kind, m.resultId])).toEqual([
      ['window', id - 2],
      ['batch', id - 1],
    ]);
    expect(late[1].coalesced).toBe(50);
    outbox.close();
  });

  it('a client stuck past the limit is cut off', async () => {
    const { server, client, wss } = await stalledPair();
    cleanup.push(() => wss.close(), () => client.terminate());
    const stuckMs = 1000;
    let stuck = 0;
    const outbox = new Outbox(server, 64 * 1024, stuckMs, () => {
      stuck++;
      server.terminate();
    });
    const heldFrom = Date.now();
    for (let i = 1; i < 200; i++) outbox.send(batch(i));
    await waitFor(() => server.readyState === WebSocket.CLOSED, { timeoutMs: stuckMs + 10_000, what: 'the stuck client to be cut off', observed: () => ({ stuck, readyState: server.readyState }) });
    expect(stuck).toBe(1);
    // Not before the limit: a client is given stuckMs to start reading again.
    expect(Date.now() - heldFrom).toBeGreaterThanOrEqual(stuckMs);
  });
});
