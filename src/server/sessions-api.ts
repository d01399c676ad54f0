import type { IncomingMessage, ServerResponse } from 'node:http';
import { AuthError, bearerToken, SESSIONS_READ_SCOPE, type Authenticator } from './auth.js';
import { sendJson } from './http-server.js';
import type { SessionRegistry } from './session-registry.js';
import type { SessionStore } from './session-store.js';
import { Session, type SessionOptions } from './session.js';

export const SESSIONS_PATH = '/v1/sessions/';

/**
 * GET /v1/sessions/:id: the session's summary and window results, for the
 * platform, from this instance or, with Redis, from whichever holds it. Readable with a token of the session's own user, or a service
 * token with the `sessions:read` scope; open in demo mode. An unknown
 * session and one the caller may not read get the same 404; an id that is
 * not valid percent-encoding, 400.
 */
export function sessionsRoute(auth: Authenticator, sessions: SessionRegistry, store: SessionStore, options: SessionOptions) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let id: string;
    try {
      id = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname.slice(SESSIONS_PATH.length));
    } catch {
      sendJson(res, 400, { error: 'bad_request', message: 'the session id is not valid percent-encoding' });
      return;
    }
    let identity;
    try {
      identity = await auth.verify(bearerToken(req.headers.authorization));
    } catch (err) {
      sendJson(res, 401, { error: 'unauthorized', message: err instanceof AuthError ? err.message : 'invalid token' });
      return;
    }
    const live = sessions.get(id);
    const ended = live ? undefined : sessions.getEnded(id);
    // Neither here nor ended here: another instance may hold it (with Redis).
    const stored = live || ended ? null : await store.load(id);
    const record = live
      ? { sessionId: live.id, userId: live.userId, state: live.attached ? 'attached' : 'detached', summary: live.summary(), windows: live.windows }
      : ended
        ? { sessionId: ended.id, userId: ended.userId, state: 'ended', summary: ended.summary, windows: ended.windows }
        : stored && {
            sessionId: stored.id,
            userId: stored.userId,
            state: stored.ended ? 'ended' : 'elsewhere',
            summary: Session.fromRecord(options, stored).summary(),
            windows: stored.windows,
          };
    const allowed = record && (auth.mode === 'demo' || identity.userId === record.userId || identity.scopes.includes(SESSIONS_READ_SCOPE));
    if (!record || !allowed) {
      sendJson(res, 404, { error: 'not_found' });
      return;
    }
    sendJson(res, 200, record);
  };
}
