import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { frame, TEST_DIR } from './helpers/app.js';
import { Instance } from './helpers/cluster.js';
import { TestClient } from './helpers/client.js';
import { waitFor } from './helpers/wait.js';

const INJECT = path.join(TEST_DIR, 'fixtures', 'inject-fault.mjs');
const face = frame('face.jpg');

let instance: Instance | null = null;
afterEach(async () => {
  await instance?.stop();
  instance = null;
});

describe('a bug that escapes every handler', () => {
  for (const [fault, event] of [
    ['rejection', 'unhandled_rejection'],
    ['exception', 'uncaught_exception'],
  ] as const) {
    it(`${event}: logged, the sessions drained to their clients, then the process exits 1`, async () => {
      instance = new Instance({ NODE_OPTIONS: `--import=${INJECT}`, JIPJUNG_TEST_FAULT: fault, DRAIN_TIMEOUT_MS: '5000' });
      await instance.start();
      let exitCode: number | null | undefined;
      void instance.exited.then((code) => (exitCode = code));

      const c = await TestClient.connect(instance.streamUrl);
      await c.stream(face, 5);
      await c.until(() => c.results('batch').length === 1);
      instance.signal('SIGUSR2');

      // Drained like a SIGTERM: the client is told to resume elsewhere.
      const closed = await c.waitForClose();
      expect(closed.code).toBe(1012);
      await waitFor(() => exitCode !== undefined, { what: 'the instance to exit' });
      expect(exitCode).toBe(1);

      const logs = instance.logs;
      const fatal = logs.filter((l) => l.event === event);
      expect(fatal).toHaveLength(1);
      expect(fatal[0]).toMatchObject({ level: 'fatal', fault: { type: 'Error', message: 'injected fault' } });
      const at = (name: string) => logs.findIndex((l) => l.event === name);
      expect(at(event)).toBeLessThan(at('drained'));
      expect(at('drained')).toBeLessThan(at('stopped'));
      expect(logs[at('stopped')]).toMatchObject({ exitCode: 1 });
    }, 60_000);
  }
});
