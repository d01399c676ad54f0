import { randomUUID } from 'node:crypto';
import type { PipelineCheckpoint, PipelineSink, SessionPipeline } from '../handler/session-pipeline.js';
import { summaryMessage, type ResultMessage, type ServerMessage, type SummaryMessage, type WindowResultMessage } from '../protocol/server-messages.js';
import { SESSION_RECORD_VERSION, type SessionRecord } from '../protocol/session-record.js';
import { storedTokenHash } from './resume-token.js';

export { DROP_REASONS, STATES, type DropReason, type FrameOutcomes, type State } from '../handler/outcomes.js';

/** What every session of this instance is built with. */
export interface SessionOptions {
  /** Opens the session's frame pipeline (`Pipelines.open`), given where its output goes. */
  openPipeline(sessionId: string, sink: PipelineSink, restored?: PipelineCheckpoint): SessionPipeline;
  /** A unit of `session` was answered and its results sent: its checkpoint moved. */
  onSettled(session: Session): void;
}

/** Window results kept per session: an hour at the default 10 s window. */
export const WINDOWS_KEPT = 360;
/** Messages kept for a detached client; results beyond it are lost to it (they stay in `windows`). */
const UNDELIVERED_KEPT = 200;
/** Latest results kept for redelivery after a resume on another instance: about 20 s. */
const RECENT_KEPT = 24;

/**
 * One student's session as the server holds it: who owns it, the resume
 * token, the connection it is attached to (or the messages kept while it is
 * away), the results kept for a resume and for GET /v1/sessions/:id, and
 * whether it is ending or closed. Its frame path is the `pipeline` (handler
 * layer), which this session gives, at construction, the way out: messages,
 * closing the connection, and a unit settled.
 */
export class Session {
  readonly id: string;
  readonly createdAt: number;
  readonly pipeline: SessionPipeline;
  /** Window results of the session, newest last (for GET /v1/sessions/:id). */
  readonly windows: WindowResultMessage[] = [];
  /** The latest results, for a client that resumes on another instance. */
  private readonly recent: ResultMessage[] = [];
  /** Messages produced while detached, delivered on resume (oldest dropped past the bound). */
  private readonly undelivered: ServerMessage[] = [];
  private tokenHash: string;
  private isAttached = true;
  private endingSince = false;
  private isClosed = false;
  private detachedSince: number | null = null;
  private toConnection: (msg: ServerMessage) => void = () => {};
  private closeConnection: (code: number, reason: string) => void = () => {};

  constructor(
    private readonly options: SessionOptions,
    /** Owner, from the client's token (`demo` in demo mode). */
    readonly userId: string,
    /** SHA-256 (hex) of the secret the client shows to resume this session. */
    resumeTokenHash: string,
    id: string = randomUUID(),
    /** Going on from a stored record. */
    restored?: SessionRecord,
  ) {
    this.id = id;
    this.tokenHash = resumeTokenHash;
    this.createdAt = restored?.createdAt ?? Date.now();
    if (restored) {
      this.recent.push(...restored.recent);
      this.windows.push(...restored.windows);
    }
    const sink: PipelineSink = {
      send: (msg) => this.send(msg),
      close: (code, reason) => this.disconnect(code, reason),
      settled: () => this.options.onSettled(this),
    };
    this.pipeline = options.openPipeline(id, sink, restored);
  }

  /** A session going on from its stored record (resumed on this instance). */
  static fromRecord(options: SessionOptions, r: SessionRecord): Session {
    return new Session(options, r.userId, storedTokenHash(r) ?? '', r.id, r);
  }

  /** SHA-256 (hex) of the secret the client shows to resume this session; replaced at every resume. */
  get resumeTokenHash(): string {
    return this.tokenHash;
  }

  replaceResumeToken(hash: string): void {
    this.tokenHash = hash;
  }

  /** Attached to a connection now (false while waiting for the client to resume). */
  get attached(): boolean {
    return this.isAttached;
  }

  /** When the connection went away without `bye` (ms since the epoch), while detached. */
  get detachedAt(): number | null {
    return this.detachedSince;
  }

  /** Ended by `bye` or taken over: no more frames, no more saves after the last. */
  get ending(): boolean {
    return this.endingSince;
  }

  end(): void {
    this.endingSince = true;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** True when nothing is queued or at a worker. */
  get idle(): boolean {
    return this.pipeline.idle;
  }

  /** Send to the client, or keep for it while it is away. */
  send(msg: ServerMessage): void {
    if (msg.type === 'result') {
      this.recent.push(msg);
      if (this.recent.length > RECENT_KEPT) this.recent.shift();
      if (msg.kind === 'window') {
        this.windows.push(msg);
        if (this.windows.length > WINDOWS_KEPT) this.windows.shift();
      }
    }
    if (this.isAttached) {
      this.toConnection(msg);
      return;
    }
    this.undelivered.push(msg);
    if (this.undelivered.length > UNDELIVERED_KEPT) this.undelivered.shift();
  }

  /** Close the connection the session is attached to, if any. */
  disconnect(code: number, reason: string): void {
    this.closeConnection(code, reason);
  }

  /**
   * Bind to a connection. A resuming client first gets the results it may
   * have missed: those kept while it was away and the latest ones sent
   * before (which may have died with the old socket), each once, in
   * resultId order, above `lastResultId` when it says what it has.
   */
  attach(send: (msg: ServerMessage) => void, disconnect: (code: number, reason: string) => void, replay?: { lastResultId?: number }): void {
    this.toConnection = send;
    this.closeConnection = disconnect;
    this.isAttached = true;
    this.detachedSince = null;
    const kept = this.undelivered.splice(0);
    if (!replay) return;
    const results = new Map<number, ResultMessage>();
    for (const msg of [...this.recent, ...kept]) {
      if (msg.type === 'result' && (replay.lastResultId === undefined || msg.resultId > replay.lastResultId)) results.set(msg.resultId, msg);
    }
    for (const id of [...results.keys()].sort((a, b) => a - b)) send(results.get(id)!);
    for (const msg of kept) if (msg.type !== 'result') send(msg);
  }

  detach(): void {
    this.isAttached = false;
    this.detachedSince = Date.now();
    this.toConnection = () => {};
    this.closeConnection = () => {};
  }

  /** The session is over here: every frame its pipeline holds is dropped; a unit at a worker is still answered. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.pipeline.close();
  }

  /** The record of this session at its checkpoint (see `PipelineCheckpoint`). */
  toRecord(): SessionRecord {
    const p = this.pipeline.checkpoint();
    return {
      v: SESSION_RECORD_VERSION,
      id: this.id,
      userId: this.userId,
      resumeTokenHash: this.tokenHash,
      createdAt: this.createdAt,
      expectedSeq: p.expectedSeq,
      accountedSeqs: p.accountedSeqs,
      builder: p.builder,
      context: p.context,
      nextResultId: p.nextResultId,
      windowAnalysed: p.windowAnalysed,
      outcomes: p.outcomes,
      stateSeconds: p.stateSeconds,
      scoreSum: p.scoreSum,
      scoreFrames: p.scoreFrames,
      recent: [...this.recent],
      windows: [...this.windows],
      ended: this.endingSince,
      updatedAt: Date.now(),
    };
  }

  /**
   * What is kept of the session once it ended, for GET /v1/sessions/:id:
   * its figures and window history. An ended session cannot be resumed, so
   * the results kept for a replay (per-frame signals among them), the
   * model's context and the open unit are not kept with it.
   */
  endedRecord(): SessionRecord {
    return { ...this.toRecord(), ended: true, recent: [], context: null, builder: null, accountedSeqs: [] };
  }

  summary(): SummaryMessage {
    return summaryMessage({ sessionId: this.id, userId: this.userId, durationMs: Date.now() - this.createdAt, ...this.pipeline.figures() });
  }
}
