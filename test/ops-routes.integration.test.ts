/**
 * The operations routes (/metrics, /dashboard and its data, the detailed
 * /readyz) are not open by default: they answer on a loopback listener of
 * their own, and on the public port only behind METRICS_TOKEN, sent as a
 * header. The public /healthz and /readyz say nothing about the instance,
 * and the shipped nginx configuration passes none of the operations routes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config/config.js';
import { startTestApp, type TestApp, BRIGHTNESS_MODEL } from './helpers/app.js';
import { freePort, Nginx } from './helpers/cluster.js';

const MODEL = { ...BRIGHTNESS_MODEL, WORKERS: '1' };
const TOKEN = 'ops-token-0123456789';
const OPS_PATHS = ['/metrics', '/dashboard', '/dashboard/data'];
const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

describe('operations settings', () => {
  it('by default the operations routes have a listener of their own on loopback, with no token', () => {
    const c = loadConfig({});
    expect(c.METRICS_PORT).toBe(9464);
    expect(c.METRICS_HOST).toBe('127.0.0.1');
    expect(c.METRICS_TOKEN).toBeUndefined();
  });

  it('a listener for them on an address other than loopback needs METRICS_TOKEN', () => {
    for (const host of ['0.0.0.0', '10.0.0.5', '::']) {
      expect(() => loadConfig({ METRICS_HOST: host }), host).toThrow(ConfigError);
      expect(loadConfig({ METRICS_HOST: host, METRICS_TOKEN: TOKEN }).METRICS_HOST).toBe(host);
    }
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) expect(loadConfig({ METRICS_HOST: host }).METRICS_HOST).toBe(host);
  });
});

describe('without METRICS_TOKEN', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(MODEL);
  });
  afterAll(() => t.close());

  it('the public port does not serve them', async () => {
    for (const p of OPS_PATHS) expect((await fetch(`${t.base}${p}`)).status, p).toBe(404);
  });

  it('the public /healthz and /readyz give a status and nothing about the instance', async () => {
    const health = await fetch(`${t.base}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${t.base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
  });

  it('the loopback listener serves them, the detailed /readyz included', async () => {
    for (const p of OPS_PATHS) expect((await fetch(`${t.ops}${p}`)).status, p).toBe(200);
    const ready = await (await fetch(`${t.ops}/readyz`)).json();
    expect(ready).toMatchObject({ status: 'ready', reasons: [], auth: 'demo', instance: expect.any(String), workers: { size: 1 } });
    // It serves the demo's stream no more than it serves the demo page's data to strangers.
    expect((await fetch(`${t.ops}/v1/sessions/x`)).status).toBe(404);
  });

  it('the dashboard URL of the start-up line answers', async () => {
    const listening = t.logs.find((l) => l.event === 'listening');
    expect(listening?.urls.dashboard).toBe(`http://127.0.0.1:${t.app.opsPort}/dashboard`);
    expect(listening?.opsPort).toBe(t.app.opsPort);
    expect((await fetch(listening!.urls.dashboard)).status).toBe(200);
  });
});

describe('with METRICS_TOKEN', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ ...MODEL, METRICS_TOKEN: TOKEN });
  });
  afterAll(() => t.close());

  it('the public port serves them only with the token in the Authorization header', async () => {
    for (const base of [t.base, t.ops]) {
      expect((await fetch(`${base}/metrics`)).status, base).toBe(401);
      expect((await fetch(`${base}/dashboard/data`)).status, base).toBe(401);
      expect((await fetch(`${base}/metrics`, bearer('wrong-token-0123456789'))).status, base).toBe(401);
      expect((await fetch(`${base}/metrics`, bearer(TOKEN))).status, base).toBe(200);
      expect((await fetch(`${base}/dashboard/data`, bearer(TOKEN))).status, base).toBe(200);
    }
    expect((await fetch(`${t.ops}/readyz`)).status).toBe(401);
    expect(await (await fetch(`${t.ops}/readyz`, bearer(TOKEN))).json()).toMatchObject({ auth: 'demo' });
  });

  it('no longer takes the token as ?token= (it would end in proxy logs and browser history)', async () => {
    for (const p of ['/metrics', '/dashboard/data']) {
      expect((await fetch(`${t.base}${p}?token=${TOKEN}`)).status, p).toBe(401);
      expect((await fetch(`${t.ops}${p}?token=${TOKEN}`)).status, p).toBe(401);
    }
  });

  it('the dashboard page itself holds nothing private: it loads, then asks for the token to read its data', async () => {
    const page = await fetch(`${t.base}/dashboard`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('id="token-form"');
    expect((await fetch(`${t.base}/dashboard/uplot.js`)).status).toBe(200);
  });
});

describe('the shipped nginx configuration', () => {
  let t: TestApp;
  let nginx: Nginx;
  beforeAll(async () => {
    // With a token, so that the instance itself would answer them: nginx must not ask.
    t = await startTestApp({ ...MODEL, METRICS_TOKEN: TOKEN });
    nginx = new Nginx(await freePort(), [t.app.port]);
    await nginx.start();
  });
  afterAll(async () => {
    await nginx?.stop();
    await t?.close();
  });

  it('passes none of the operations routes, with or without the token', async () => {
    const base = `http://127.0.0.1:${nginx.port}`;
    for (const p of [...OPS_PATHS, '/readyz', '/dashboard/uplot.js', '/dashboard.js', '//metrics', '/%6Detrics']) {
      expect((await fetch(`${base}${p}`)).status, p).toBe(404);
      expect((await fetch(`${base}${p}`, bearer(TOKEN))).status, p).toBe(404);
    }
    // The demo page and /healthz still go through.
    expect((await fetch(`${base}/`)).status).toBe(200);
    expect(await (await fetch(`${base}/healthz`)).json()).toEqual({ status: 'ok' });
  });
});
