import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Resume tokens: 24 random bytes given to the client in each welcome. Only
 * their SHA-256 is kept, in memory and in the session store: a heap dump or
 * a read of Redis then resumes nobody's session. A plain hash is enough, as
 * the token is random and long (no dictionary to try), unlike a password.
 */
export const newResumeToken = (): string => randomBytes(24).toString('base64url');

export const hashResumeToken = (token: string): string => createHash('sha256').update(token).digest('hex');

/** Whether `token` is the one `hash` was made from, in constant time. */
export function resumeTokenMatches(hash: string | null | undefined, token: string | undefined): boolean {
  if (!hash || token === undefined) return false;
  const expected = Buffer.from(hash, 'hex');
  const given = createHash('sha256').update(token).digest();
  return expected.length === given.length && timingSafeEqual(expected, given);
}

/** The token hash of a stored session record of either form (hashed, or from before tokens were hashed); null if it has none. */
export function storedTokenHash(r: { resumeTokenHash?: unknown; resumeToken?: unknown }): string | null {
  if (typeof r.resumeTokenHash === 'string') return r.resumeTokenHash;
  return typeof r.resumeToken === 'string' ? hashResumeToken(r.resumeToken) : null;
}
