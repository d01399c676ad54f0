import { timingSafeEqual } from 'node:crypto';
import type { Route } from './http-server.js';
import { sendJson } from './http-server.js';

/**
 * The operations routes that hold nothing about the instance: the dashboard
 * page and its charting library. A browser cannot put a header on the
 * navigation that opens a page, so the page loads without the token and
 * sends it itself with every request for data.
 */
const OPEN_PATHS = new Set(['/dashboard', '/dashboard/uplot.js', '/dashboard/uplot.css']);

/**
 * Guards the operations routes with a static token, sent as
 * `Authorization: Bearer <token>` and nowhere else: a token in the query
 * string ends in proxy logs and browser history. Without a token the routes
 * are returned as they are; the caller serves them only on a loopback
 * listener then.
 */
export function withOpsToken(token: string | undefined, routes: Record<string, Route>): Record<string, Route> {
  if (!token) return routes;
  const expected = Buffer.from(token);
  const allowed = (header: string | undefined): boolean => {
    const given = Buffer.from(/^Bearer\s+(\S+)$/i.exec(header ?? '')?.[1] ?? '');
    return given.length === expected.length && timingSafeEqual(given, expected);
  };
  return Object.fromEntries(
    Object.entries(routes).map(([path, route]) => [
      path,
      OPEN_PATHS.has(path)
        ? route
        : (((req, res) => {
            if (allowed(req.headers.authorization)) return route(req, res);
            res.setHeader('www-authenticate', 'Bearer');
            sendJson(res, 401, { error: 'unauthorized' });
          }) satisfies Route),
    ]),
  );
}
