import type { IncomingMessage, ServerResponse } from 'node:http';
import { AuthError, bearerToken, SESSIONS_READ_SCOPE, type Authenticator } from './auth.js';
import { sendJson } from './http-server.js';
import type { SessionRegistry } from './session-registry.js';

export const SESSIONS_PATH = '/v1/sessions/';

/**
 * GET /v1/sessions/:id: the session's summary and window results, for the
 * platform. Readable with a token of the session's own user, or a service
 * token with the `sessions:read` scope; open in demo mode. An unknown
 * session and one the caller may not read get the same 404.
 */
export function sessionsRoute(auth: Authenticator, sessions: SessionRegistry) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const id = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname.slice(SESSIONS_PATH.length));
    let identity;
    try {
      identity = await auth.verify(bearerToken(req.headers.authorization));
    } catch (err) {
      sendJson(res, 401, { error: 'unauthorized', message: err instanceof AuthError ? err.message : 'invalid token' });
      return;
    }
    const live = sessions.get(id);
    const record = live
      ? { sessionId: live.id, userId: live.userId, state: live.attached ? 'attached' : 'detached', summary: live.summary(), windows: live.windows }
      : ((e) => e && { sessionId: e.id, userId: e.userId, state: 'ended', summary: e.summary, windows: e.windows })(sessions.getEnded(id));
    const allowed = record && (auth.mode === 'demo' || identity.userId === record.userId || identity.scopes.includes(SESSIONS_READ_SCOPE));
    if (!record || !allowed) {
      sendJson(res, 404, { error: 'not_found' });
      return;
    }
    sendJson(res, 200, record);
  };
}
