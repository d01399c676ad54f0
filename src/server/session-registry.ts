import { resumeTokenMatches } from './resume-token.js';
import type { SummaryMessage, WindowResultMessage } from '../protocol/server-messages.js';
import type { Session } from './session.js';

/** What stays of a session after it ended, for GET /v1/sessions/:id. */
export interface EndedSession {
  id: string;
  userId: string;
  summary: SummaryMessage;
  windows: WindowResultMessage[];
  endedAt: number;
}

/** Ended sessions kept in memory (the newest), and for how long. */
const ENDED_KEPT = 1000;
const ENDED_TTL_MS = 60 * 60 * 1000;

/**
 * The sessions this instance holds: attached to a connection, or detached
 * after an unexpected disconnect and waiting up to `resumeTtlMs` for the
 * client to come back with its `resumeToken`.
 */
export class SessionRegistry {
  private readonly sessions = new Map<string, Session>();
  private readonly expiry = new Map<string, NodeJS.Timeout>();
  private readonly ended = new Map<string, EndedSession>();

  constructor(private readonly resumeTtlMs: number) {}

  get size(): number {
    return this.sessions.size;
  }

  values(): IterableIterator<Session> {
    return this.sessions.values();
  }

  get(id: string): Session | undefined {
    return this.sessions.get(id);
  }

  has(id: string): boolean {
    return this.sessions.has(id);
  }

  add(session: Session): void {
    this.sessions.set(session.id, session);
  }

  /**
   * Sessions `userId` holds here and has not ended: attached, or detached and
   * waiting for their client. Both cost memory, so both count against the
   * per-user cap.
   */
  heldBy(userId: string): Session[] {
    const out: Session[] = [];
    for (const s of this.sessions.values()) if (s.userId === userId && !s.ending) out.push(s);
    return out;
  }

  /**
   * The session `id` if `userId` owns it and `resumeToken` is its token.
   * Unknown ids and refused claims look the same to the caller, so a client
   * cannot learn whether somebody else's session exists.
   */
  claim(id: string, userId: string, resumeToken: string | undefined): Session | null {
    const session = this.sessions.get(id);
    if (!session || session.ending || session.userId !== userId || !resumeToken) return null;
    if (!resumeTokenMatches(session.resumeTokenHash, resumeToken)) return null;
    this.keep(session);
    return session;
  }

  /** The connection went away without `bye`: keep the session for a while, then forget it and call `expire`. */
  detach(session: Session, expire: (session: Session) => void): void {
    this.keep(session);
    const timer = setTimeout(() => {
      this.expiry.delete(session.id);
      this.remove(session);
      expire(session);
    }, this.resumeTtlMs);
    timer.unref();
    this.expiry.set(session.id, timer);
  }

  remove(session: Session): void {
    this.keep(session);
    this.sessions.delete(session.id);
    const now = Date.now();
    this.ended.set(session.id, { id: session.id, userId: session.userId, summary: session.summary(), windows: [...session.windows], endedAt: now });
    for (const [id, e] of this.ended) {
      if (this.ended.size <= ENDED_KEPT && now - e.endedAt < ENDED_TTL_MS) break;
      this.ended.delete(id);
    }
  }

  /** An ended session's record, if still kept. */
  getEnded(id: string): EndedSession | undefined {
    const e = this.ended.get(id);
    return e && Date.now() - e.endedAt < ENDED_TTL_MS ? e : undefined;
  }

  /** Stop every expiry timer (shutdown: the sessions stay in the store for other instances). */
  close(): void {
    for (const timer of this.expiry.values()) clearTimeout(timer);
    this.expiry.clear();
  }

  private keep(session: Session): void {
    const timer = this.expiry.get(session.id);
    if (timer) clearTimeout(timer);
    this.expiry.delete(session.id);
  }
}
