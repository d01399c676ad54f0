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
    const session = sessions.get(id);
    const allowed = session && (auth.mode === 'demo' || identity.userId === session.userId || identity.scopes.includes(SESSIONS_READ_SCOPE));
    if (!session || !allowed) {
      sendJson(res, 404, { error: 'not_found' });
      return;
    }
    sendJson(res, 200, { sessionId: session.id, userId: session.userId, attached: session.attached, summary: session.summary(), windows: session.windows });
  };
}
