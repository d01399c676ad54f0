import { timingSafeEqual } from 'node:crypto';
import type { Route } from './http-server.js';
import { sendJson } from './http-server.js';

/**
 * Guards the operations routes (/metrics, /dashboard) with a static token:
 * `Authorization: Bearer <token>`, or `?token=` for a person opening the
 * dashboard in a browser (its page passes the token on to its data). With no
 * token configured the routes are open; put them on their own port
 * (METRICS_PORT) or behind the proxy instead.
 */
export function withOpsToken(token: string | undefined, routes: Record<string, Route>): Record<string, Route> {
  if (!token) return routes;
  const expected = Buffer.from(token);
  const allowed = (header: string | undefined, query: string | null): boolean => {
    const given = /^Bearer\s+(\S+)$/i.exec(header ?? '')?.[1] ?? query ?? '';
    const buf = Buffer.from(given);
    return buf.length === expected.length && timingSafeEqual(buf, expected);
  };
  return Object.fromEntries(
    Object.entries(routes).map(([path, route]) => [
      path,
      ((req, res) => {
        const query = new URL(req.url ?? '/', 'http://localhost').searchParams.get('token');
        // The charting library's own files hold nothing private.
        if (path.startsWith('/dashboard/uplot') || allowed(req.headers.authorization, query)) return route(req, res);
        sendJson(res, 401, { error: 'unauthorized' });
      }) satisfies Route,
    ]),
  );
}
