/** The API's load limits and the guard of its operations endpoints, as pure rules (api/limits.ts). */
import { ClientRateLimit, clientKey, ConcurrencyLimit, isLoopback, opsAccess } from '../../api/limits';

const equal = (a: string, b: string) => a === b;

describe('ConcurrencyLimit', () => {
  test('admits up to its maximum at once; a slot given back admits one more', () => {
    const limit = new ConcurrencyLimit(2);
    expect([limit.tryEnter(), limit.tryEnter(), limit.tryEnter()]).toEqual([true, true, false]);
    expect(limit.current).toBe(2);
    limit.leave();
    expect([limit.tryEnter(), limit.tryEnter()]).toEqual([true, false]);
  });

  test('a stray leave never makes room beyond the maximum', () => {
    const limit = new ConcurrencyLimit(1);
    limit.leave();
    expect([limit.tryEnter(), limit.tryEnter()]).toEqual([true, false]);
  });
});

describe('ClientRateLimit', () => {
  test('a burst of one second worth, then refused with the seconds until the next request', () => {
    const rate = new ClientRateLimit(3);
    const at = 10_000;
    expect([rate.take('a', at), rate.take('a', at), rate.take('a', at)]).toEqual([{ ok: true }, { ok: true }, { ok: true }]);
    expect(rate.take('a', at)).toEqual({ ok: false, retryAfterSeconds: 1 });
  });

  test('refills at its rate: after 1/rate seconds exactly one more request', () => {
    const rate = new ClientRateLimit(4);
    for (let i = 0; i < 4; i++) rate.take('a', 0);
    expect(rate.take('a', 249).ok).toBe(false);
    expect(rate.take('a', 250).ok).toBe(true);
    expect(rate.take('a', 250).ok).toBe(false);
    // Never more than the burst, however long the client was quiet.
    const later = 3_600_000;
    expect(Array.from({ length: 5 }, () => rate.take('a', later).ok)).toEqual([true, true, true, true, false]);
  });

  test('each client has its own bucket', () => {
    const rate = new ClientRateLimit(1);
    expect(rate.take('a', 0).ok).toBe(true);
    expect(rate.take('a', 0).ok).toBe(false);
    expect(rate.take('b', 0).ok).toBe(true);
  });

  test('Retry-After rounds up to whole seconds, at least 1', () => {
    const slow = new ClientRateLimit(1);
    slow.take('a', 0);
    expect(slow.take('a', 100)).toEqual({ ok: false, retryAfterSeconds: 1 });
    const fast = new ClientRateLimit(1000);
    for (let i = 0; i < 1000; i++) fast.take('a', 0);
    expect(fast.take('a', 0)).toEqual({ ok: false, retryAfterSeconds: 1 });
  });

  test('0 is unlimited', () => {
    const rate = new ClientRateLimit(0);
    expect(Array.from({ length: 10_000 }, () => rate.take('a', 0).ok).every(Boolean)).toBe(true);
    expect(rate.tracked).toBe(0);
  });

  test('buckets that filled up again are forgotten: memory follows the recent clients only', () => {
    const rate = new ClientRateLimit(10);
    for (let i = 0; i < 1000; i++) rate.take(`client-${i}`, 5_000);
    expect(rate.tracked).toBe(1000);
    rate.take('late', 7_000);
    expect(rate.tracked).toBe(1);
  });
});

describe('clientKey', () => {
  test('the authenticated user, else the address; the two never collide', () => {
    expect(clientKey('eko', '127.0.0.1')).toBe('user:eko');
    expect(clientKey(undefined, '10.0.0.5')).toBe('address:10.0.0.5');
    expect(clientKey('10.0.0.5', '10.0.0.5')).not.toBe(clientKey(undefined, '10.0.0.5'));
    expect(clientKey(undefined, undefined)).toBe('address:unknown');
  });
});

describe('isLoopback', () => {
  test.each(['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1'])('%s is loopback', (a) => expect(isLoopback(a)).toBe(true));
  test.each(['10.0.0.1', '192.0.2.2', '::ffff:10.0.0.1', '::', '0.0.0.0', '1127.0.0.1', '127.0.0.1.example', 'fe80::1', '', undefined])('%s is not', (a) =>
    expect(isLoopback(a)).toBe(false),
  );
});

describe('opsAccess', () => {
  const from = (remoteAddress: string | undefined, authorization?: string) => ({ remoteAddress, authorization });
  const token = 'ops-0123456789abcdef';

  test('loopback: loopback addresses only, whatever the headers; others are forbidden', () => {
    expect(opsAccess('loopback', from('127.0.0.1'), '', equal)).toBe('allowed');
    expect(opsAccess('loopback', from('::1'), '', equal)).toBe('allowed');
    expect(opsAccess('loopback', from('203.0.113.7'), '', equal)).toBe('forbidden');
    expect(opsAccess('loopback', from('203.0.113.7', `Bearer ${token}`), token, equal)).toBe('forbidden');
    expect(opsAccess('loopback', from(undefined), '', equal)).toBe('forbidden');
  });

  test('token: the bearer token from anywhere, loopback included; anything else is unauthorized', () => {
    for (const address of ['127.0.0.1', '203.0.113.7']) {
      expect(opsAccess('token', from(address, `Bearer ${token}`), token, equal)).toBe('allowed');
      for (const header of [undefined, '', token, `Bearer ${token}x`, `Basic ${token}`, 'Bearer ']) {
        expect(opsAccess('token', from(address, header), token, equal)).toBe('unauthorized');
      }
    }
    // An empty configured token never matches (config refuses it; this is the second line).
    expect(opsAccess('token', from('127.0.0.1', 'Bearer '), '', equal)).toBe('unauthorized');
  });

  test('open: anyone', () => {
    expect(opsAccess('open', from('203.0.113.7'), '', equal)).toBe('allowed');
  });
});
