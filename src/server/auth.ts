import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';

/** Who a token says the client is. The token itself is never kept or logged. */
export interface Identity {
  userId: string;
  /** Session the token is bound to (`sid` claim), if any. */
  sessionId?: string;
  scopes: string[];
  /** ms since the Unix epoch; Infinity in demo mode. */
  expiresAt: number;
}

export class AuthError extends Error {
  override name = 'AuthError';
}

export type AuthMode = 'demo' | 'secret' | 'jwks';

export interface AuthOptions {
  secret?: string;
  jwksUrl?: string;
  audience?: string;
  issuer?: string;
  /** Longest lifetime of a token accepted, in seconds (default: a day). */
  maxTokenSeconds?: number;
}

const DEFAULT_MAX_TOKEN_SECONDS = 86_400;

/** The scope a service token needs to read any session's results. */
export const SESSIONS_READ_SCOPE = 'sessions:read';

const DEMO_IDENTITY: Identity = Object.freeze({ userId: 'demo', scopes: [SESSIONS_READ_SCOPE], expiresAt: Infinity });

/**
 * Verifies the JWTs platforms issue to their students: HS256 with a shared
 * secret, or RS256/ES256 with keys from a JWKS URL. Without either the
 * server runs in demo mode: everyone is the user `demo`.
 */
export class Authenticator {
  readonly mode: AuthMode;
  private readonly key: Uint8Array | JWTVerifyGetKey | null;
  private readonly algorithms: string[];

  constructor(private readonly opts: AuthOptions) {
    if (opts.secret) {
      this.mode = 'secret';
      this.key = new TextEncoder().encode(opts.secret);
      this.algorithms = ['HS256'];
    } else if (opts.jwksUrl) {
      this.mode = 'jwks';
      this.key = createRemoteJWKSet(new URL(opts.jwksUrl), { timeoutDuration: 5000, cooldownDuration: 30_000 });
      this.algorithms = ['RS256', 'ES256'];
    } else {
      this.mode = 'demo';
      this.key = null;
      this.algorithms = [];
    }
  }

  /** Resolves with the identity, or rejects with AuthError (never with the token in the message). */
  async verify(token: string | undefined): Promise<Identity> {
    if (this.mode === 'demo') return DEMO_IDENTITY;
    if (!token) throw new AuthError('a token is required');
    let payload: JWTPayload;
    try {
      const options = { algorithms: this.algorithms, audience: this.opts.audience, issuer: this.opts.issuer, requiredClaims: ['sub', 'exp'] };
      payload = (
        this.key instanceof Uint8Array ? await jwtVerify(token, this.key, options) : await jwtVerify(token, this.key as JWTVerifyGetKey, options)
      ).payload;
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new AuthError('the token has expired');
      if (err instanceof joseErrors.JOSEError) throw new AuthError(`the token is not valid (${err.code})`);
      throw new AuthError('the token is not valid');
    }
    if (typeof payload.sub !== 'string' || payload.sub.length === 0 || payload.sub.length > 256) {
      throw new AuthError('the token has no valid sub');
    }
    // A stolen token is worth as long as it lives. Measured from when it was issued, or from now when it does
    // not say (or says the future): a far-off iat must not stretch the limit.
    const nowS = Date.now() / 1000;
    const issuedS = typeof payload.iat === 'number' ? Math.min(payload.iat, nowS) : nowS;
    if ((payload.exp as number) - issuedS > (this.opts.maxTokenSeconds ?? DEFAULT_MAX_TOKEN_SECONDS)) {
      throw new AuthError('the token lives longer than this server allows');
    }
    const scope = typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : [];
    const sid = typeof payload.sid === 'string' && payload.sid.length <= 128 ? payload.sid : undefined;
    return { userId: payload.sub, sessionId: sid, scopes: scope, expiresAt: (payload.exp as number) * 1000 };
  }
}

/** The bearer token of an `Authorization: Bearer …` header, if any. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  return m?.[1];
}
