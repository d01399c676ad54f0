/**
 * `hello.client` is whatever a client chose to send (up to 16 KiB of JSON):
 * `session_open` logs only a few known fields of it, each of its type and
 * cut to a length, so that neither personal data an integrator put there
 * nor a flood of text reaches the logs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientLogFields } from '../src/handler/control.js';
import { startTestApp, type TestApp, BRIGHTNESS_MODEL } from './helpers/app.js';
import { TestClient } from './helpers/client.js';

describe('clientLogFields', () => {
  it('keeps the known fields of their type, cut to 64 characters', () => {
    expect(clientLogFields({ library: 'jipjung-client', version: '1', width: 320, height: 240, encoder: 'worker' })).toEqual({
      library: 'jipjung-client',
      version: '1',
      width: 320,
      height: 240,
      encoder: 'worker',
    });
    expect(clientLogFields({ library: 'x'.repeat(500), version: 7, width: '320', height: 1e12, encoder: { a: 1 } })).toEqual({ library: 'x'.repeat(64) });
    expect(clientLogFields({ email: 'student@example.com', name: 'Kim' })).toEqual({});
    expect(clientLogFields(undefined)).toBeUndefined();
  });
});

describe('session_open', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ ...BRIGHTNESS_MODEL, WORKERS: '1' });
  });
  afterAll(() => t.close());

  it('logs the known client fields and nothing else the client sent', async () => {
    const client = {
      library: 'jipjung-client',
      version: '1',
      width: 320,
      height: 240,
      encoder: 'worker',
      email: 'student@example.com',
      notes: 'y'.repeat(12_000),
      nested: { phone: '+82-10-0000-0000' },
    };
    const c = await TestClient.connect(t.url, { type: 'hello', client });
    const open = t.logs.find((l) => l.event === 'session_open' && l.sessionId === c.welcome!.sessionId);
    expect(open?.client).toEqual({ library: 'jipjung-client', version: '1', width: 320, height: 240, encoder: 'worker' });
    const text = JSON.stringify(t.logs);
    expect(text).not.toContain('student@example.com');
    expect(text).not.toContain('+82-10');
    expect(text).not.toContain('y'.repeat(100));
    c.close();
  });
});
