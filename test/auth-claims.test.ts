/**
 * What a hello token must carry beyond its signature: `aud` and `iss` when
 * AUTH_AUDIENCE and AUTH_ISSUER are set, and a lifetime (exp − iat) no
 * longer than AUTH_MAX_TOKEN_SECONDS: a stolen ten-year token is worth ten
 * years of sessions.
 */
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/config.js';
import { AuthError, Authenticator } from '../src/server/auth.js';

const SECRET = 'a-test-secret-that-is-long-enough-0123456789';
const key = new TextEncoder().encode(SECRET);
const now = () => Math.floor(Date.now() / 1000);

interface Claims {
  aud?: string;
  iss?: string;
  iat?: number | null;
  exp?: number | null;
}

function sign(c: Claims = {}): Promise<string> {
  const jwt = new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('alice');
  if (c.aud) jwt.setAudience(c.aud);
  if (c.iss) jwt.setIssuer(c.iss);
  if (c.iat !== null) jwt.setIssuedAt(c.iat ?? now());
  if (c.exp !== null) jwt.setExpirationTime(c.exp ?? now() + 600);
  return jwt.sign(key);
}

async function refusal(auth: Authenticator, token: string): Promise<string | null> {
  try {
    await auth.verify(token);
    return null;
  } catch (err) {
    expect(err).toBeInstanceOf(AuthError);
    return (err as Error).message;
  }
}

describe('aud and iss', () => {
  const auth = new Authenticator({ secret: SECRET, audience: 'jipjung', issuer: 'https://learn.example.com' });
  const good = { aud: 'jipjung', iss: 'https://learn.example.com' };

  it('are required when configured: a token without them, or with others, is refused', async () => {
    expect(await refusal(auth, await sign(good))).toBeNull();
    expect(await refusal(auth, await sign({ iss: good.iss }))).toMatch(/not valid/);
    expect(await refusal(auth, await sign({ aud: good.aud }))).toMatch(/not valid/);
    expect(await refusal(auth, await sign({ ...good, aud: 'another-service' }))).toMatch(/not valid/);
    expect(await refusal(auth, await sign({ ...good, iss: 'https://evil.example' }))).toMatch(/not valid/);
  });
});

describe('token lifetime', () => {
  it('is at most AUTH_MAX_TOKEN_SECONDS, a day by default', () => {
    expect(loadConfig({}).AUTH_MAX_TOKEN_SECONDS).toBe(86_400);
  });

  const auth = new Authenticator({ secret: SECRET, maxTokenSeconds: 3600 });

  it('a token that lives longer than the maximum is refused, however fresh', async () => {
    expect(await refusal(auth, await sign({ iat: now(), exp: now() + 3600 }))).toBeNull();
    expect(await refusal(auth, await sign({ iat: now(), exp: now() + 3601 }))).toBe('the token lives longer than this server allows');
    // The ten-year token.
    expect(await refusal(auth, await sign({ iat: now(), exp: now() + 10 * 365 * 86_400 }))).toBe('the token lives longer than this server allows');
  });

  it('a token without iat is judged by the time it has left; one without exp is refused', async () => {
    expect(await refusal(auth, await sign({ iat: null, exp: now() + 600 }))).toBeNull();
    expect(await refusal(auth, await sign({ iat: null, exp: now() + 7200 }))).toBe('the token lives longer than this server allows');
    expect(await refusal(auth, await sign({ exp: null }))).toMatch(/not valid/);
  });

  it('an iat in the future does not buy a longer life', async () => {
    expect(await refusal(auth, await sign({ iat: now() + 3000, exp: now() + 3000 + 3600 }))).not.toBeNull();
  });

  it('demo mode reads no token', async () => {
    expect(await new Authenticator({ maxTokenSeconds: 60 }).verify(undefined)).toMatchObject({ userId: 'demo' });
  });
});
