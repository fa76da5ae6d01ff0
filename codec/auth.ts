/**
 * Who may use the codec server: an operator presenting K2_CODEC_TOKEN, either as
 * `Authorization: Bearer <token>` (the temporal CLI's --codec-auth, scripts, a Web UI that forwards
 * it) or as the session cookie the server's own sign-in page sets (the dev server's Web UI has no
 * login of its own; with "Include cross-origin credentials" it sends the cookie along).
 *
 * The cookie holds an expiry and an HMAC of it keyed by the token: nothing to store, it cannot be
 * forged without the token, and changing the token ends every session. Comparisons are constant-time.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'k2_codec_session';
export const SESSION_MS = 12 * 60 * 60 * 1000;

/** Constant-time equality of two secrets of any length (compared as SHA-256 digests). */
export function sameSecret(given: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(expected)) && expected.length > 0;
}

function sessionMac(token: string, expiresAtMs: number): string {
  return createHmac('sha256', token).update(`k2-codec-session:${expiresAtMs}`).digest('base64url');
}

/** The value of a new session cookie, valid until `expiresAtMs`. */
export function sessionCookieValue(token: string, expiresAtMs: number): string {
  return `${expiresAtMs}.${sessionMac(token, expiresAtMs)}`;
}

/** True when `value` is a session cookie made with `token` that has not expired at `nowMs`. */
export function isValidSession(token: string, value: string, nowMs: number): boolean {
  const m = /^(\d{1,15})\.([A-Za-z0-9_-]{43})$/.exec(value);
  if (!m) return false;
  const expiresAtMs = Number(m[1]);
  return sameSecret(m[2], sessionMac(token, expiresAtMs)) && expiresAtMs > nowMs;
}

/** One cookie's value out of a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export type Credential = 'bearer' | 'session';

/** How the request authenticated, or undefined (then it is refused with 401). */
export function authenticate(headers: { authorization?: string; cookie?: string }, token: string, nowMs: number): Credential | undefined {
  const bearer = /^Bearer\s+(.+)$/i.exec(headers.authorization ?? '');
  if (bearer && sameSecret(bearer[1].trim(), token)) return 'bearer';
  const session = cookieValue(headers.cookie, SESSION_COOKIE);
  if (session && isValidSession(token, session, nowMs)) return 'session';
  return undefined;
}
