import fs from 'node:fs';
import type { Reporter, TestModule } from 'vitest/node';

export interface RunCount {
  passed: number;
  failed: number;
  skipped: number;
  /** Tests that never ran because their suite's or file's set-up failed (neither passed nor skipped). */
  notRun: number;
  /** What the failures were, one line each, for the line above the closing one. */
  failures: string[];
}

/**
 * Counts what happened in a run. A failed test, a file that failed to load, a
 * failed `beforeAll`/`afterAll` and an unhandled error each count as one
 * failure; a test skipped because its suite's set-up failed is counted as not
 * run, never as passed or skipped, and only a test marked `skip`/`todo` is skipped.
 */
export function countRun(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): RunCount {
  const count: RunCount = { passed: 0, failed: 0, skipped: 0, notRun: 0, failures: [] };
  const fail = (what: string) => {
    count.failed++;
    count.failures.push(what);
  };
  for (const mod of testModules) {
    const file = mod.relativeModuleId;
    let failedHere = 0;
    for (const err of mod.errors()) {
      fail(`${file}: ${err.message?.split('\n')[0] ?? 'error'}`);
      failedHere++;
    }
    for (const suite of mod.children.allSuites()) {
      for (const err of suite.errors()) {
        fail(`${file} › ${suite.name}: ${err.message?.split('\n')[0] ?? 'error'}`);
        failedHere++;
      }
    }
    for (const test of mod.children.allTests()) {
      const state = test.result().state;
      if (state === 'passed') count.passed++;
      else if (state === 'failed') {
        fail(`${file} › ${test.fullName}`);
        failedHere++;
      } else if (test.options.mode === 'skip' || test.options.mode === 'todo') count.skipped++;
      else count.notRun++;
    }
    // vitest says the file failed but no error was attached to it: still a failure.
    if (mod.state() === 'failed' && failedHere === 0) fail(`${file}: failed`);
  }
  for (const err of unhandledErrors) {
    const message = (err as { message?: string })?.message?.split('\n')[0] ?? String(err);
    fail(`unhandled error: ${message}`);
  }
  return count;
}

/** `N passed, N failed, N skipped`: the line CI and people read. */
export function closingLine(c: Pick<RunCount, 'passed' | 'failed' | 'skipped'>, label = ''): string {
  return `${label ? `${label}: ` : ''}${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped`;
}

/**
 * Prints the count after vitest's own report. Under `npm test` (scripts/test.mjs
 * sets JIPJUNG_TEST_COUNT_FILE) it also writes the count as JSON for the one
 * closing line over every tier.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    const count = countRun(testModules, unhandledErrors);
    const out = process.env.JIPJUNG_TEST_COUNT_FILE;
    if (out) fs.writeFileSync(out, JSON.stringify(count));
    const lines = [''];
    if (count.failures.length) lines.push('Failed:', ...count.failures.map((f) => `  ${f}`));
    if (count.notRun) lines.push(`${count.notRun} tests did not run because their suite's set-up failed`);
    lines.push(closingLine(count, out ? 'vitest' : ''));
    process.stdout.write(`${lines.join('\n')}\n`);
  }
}
