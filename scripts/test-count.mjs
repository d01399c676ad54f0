// Counts of a Python unittest run, read from its closing lines, for the one
// closing line of `npm test` (scripts/test.mjs).

/**
 * unittest ends with `Ran N tests in …` then `OK`, `OK (skipped=S)` or
 * `FAILED (failures=F, errors=E, skipped=S)`. An import error is an error
 * there already; a run that printed no count, or exited non-zero with no
 * failure counted, is one failure.
 */
export function countUnittest(text, status) {
  const ran = text.match(/^Ran (\d+) tests? in /m);
  if (!ran) return { passed: 0, failed: 1, skipped: 0, note: `no test count, exit ${status}` };
  const verdict = text.slice(ran.index).match(/^(OK|FAILED)(?: \((.*)\))?$/m);
  const fields = Object.fromEntries(
    (verdict?.[2] ?? '')
      .split(',')
      .map((f) => f.trim().split('='))
      .filter((kv) => kv.length === 2)
      .map(([k, v]) => [k, Number(v)]),
  );
  const failed = (fields.failures ?? 0) + (fields.errors ?? 0) + (fields['unexpected successes'] ?? 0);
  const skipped = (fields.skipped ?? 0) + (fields['expected failures'] ?? 0);
  const count = { passed: Number(ran[1]) - failed - skipped, failed, skipped };
  if (!verdict) return { ...count, failed: failed || 1, note: `no verdict, exit ${status}` };
  if (status !== 0 && failed === 0) return { ...count, failed: 1, note: `exit ${status}` };
  return count;
}
