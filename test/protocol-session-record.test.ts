/**
 * The session record's check (src/protocol/session-record.ts), with no
 * Redis: what passes, what is refused and why, and the memory store
 * treating a refused record as absent. The same against a real Redis is in
 * session-store.integration.test.ts.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { batchResult, checkSessionRecord, SESSION_RECORD_VERSION, windowResult, type SessionRecord } from '../src/protocol/messages.js';
import { MemorySessionStore } from '../src/server/session-store.js';
import { createLogger } from '../src/utils/logger.js';

const counts = { lost: 0, rejected: 1, duplicate: 0, late: 0, rateLimited: 0, shed: 0 };
const outcome = { score: 71, state: 'distracted' as const, signals: { reasons: ['head-turned'] } };

/** A record as a session writes it after its first window: built from the protocol's own builders. */
function sessionRecord(id = 's-1', overrides: Partial<SessionRecord> = {}): SessionRecord {
  const batches = Array.from({ length: 10 }, (_, i) =>
    batchResult({ resultId: i + 1, seqFrom: i * 5, seqTo: i * 5 + 4, framesAnalysed: 1, outcome, counts, frames: [{ analysed: true, face: true }], seqs: [i * 5] }),
  );
  const window = windowResult({ resultId: 11, seqFrom: 0, seqTo: 49, framesAnalysed: 10, outcome, counts });
  return {
    v: SESSION_RECORD_VERSION,
    id,
    userId: 'student-42',
    resumeTokenHash: 'ab'.repeat(32),
    createdAt: 1_700_000_000_000,
    expectedSeq: 50,
    accountedSeqs: [52, 53],
    builder: { base: 0, windowOpen: false, windowSeqFrom: 50, windowCounts: { ...counts, rejected: 0 } },
    context: { calibration: { samples: 40 } },
    nextResultId: 12,
    windowAnalysed: 0,
    outcomes: { received: 53, analysed: 10, rejected: { jpeg_invalid: 10 }, dropped: { shed: 30 }, lost: 3, resyncs: 0 },
    stateSeconds: { focused: 0, distracted: 10, drowsy: 0, absent: 0, unknown: 0 },
    scoreSum: 710,
    scoreFrames: 10,
    recent: [...batches, window],
    windows: [window],
    ended: false,
    updatedAt: Date.now(),
    ...overrides,
  };
}

/** The record as another instance reads it: through JSON. */
const stored = (r: unknown) => JSON.parse(JSON.stringify(r)) as Record<string, any>;

describe('checkSessionRecord', () => {
  it('passes a record as a session writes it, unchanged', () => {
    const record = sessionRecord();
    expect(checkSessionRecord(stored(record))).toEqual({ ok: true, record: stored(record) });
  });

  it('passes a record from before tokens were hashed, and one with fields of a newer server (dropped)', () => {
    const { resumeTokenHash: _, ...old } = stored(sessionRecord());
    expect(checkSessionRecord({ ...old, resumeToken: 'q1ZrV' })).toMatchObject({ ok: true, record: { resumeToken: 'q1ZrV' } });
    const newer = checkSessionRecord({ ...stored(sessionRecord()), futureField: 1 });
    expect(newer.ok && newer.record).not.toHaveProperty('futureField');
    // Results keep what a newer server put in them: they are replayed to its clients as they are.
    const extended = stored(sessionRecord());
    extended.recent[0].hint = 'new';
    const checked = checkSessionRecord(extended);
    expect(checked.ok && checked.record.recent[0]).toHaveProperty('hint', 'new');
  });

  it('refuses a record of another version, saying which', () => {
    expect(checkSessionRecord({ ...stored(sessionRecord()), v: 2 })).toEqual({ ok: false, reason: 'version 2; this server reads version 1' });
    const { v: _, ...unversioned } = stored(sessionRecord());
    expect(checkSessionRecord(unversioned)).toEqual({ ok: false, reason: 'no version; this server reads version 1' });
    expect(checkSessionRecord([1])).toEqual({ ok: false, reason: 'not a JSON object' });
    expect(checkSessionRecord(null)).toEqual({ ok: false, reason: 'not a JSON object' });
  });

  it('refuses a corrupt record, naming the fields and never their values', () => {
    const cases: Array<[string, (r: Record<string, any>) => void]> = [
      ['outcomes.analysed', (r) => (r.outcomes.analysed = -1)],
      ['expectedSeq', (r) => delete r.expectedSeq],
      ['context', (r) => (r.context = 'private notes of student-42')],
      ['recent.3.type', (r) => (r.recent[3] = { ...r.recent[3], type: 'welcome' })],
      ['recent.0.frames.0.seq', (r) => delete r.recent[0].frames[0].seq],
      ['windows.0.state', (r) => (r.windows[0].state = 'asleep')],
      ['builder.windowCounts.late', (r) => (r.builder.windowCounts.late = 'many')],
      ['resumeTokenHash', (r) => (r.resumeTokenHash = 'not-hex-of-student-42')],
    ];
    for (const [path, corrupt] of cases) {
      const r = stored(sessionRecord());
      corrupt(r);
      const checked = checkSessionRecord(r);
      expect(checked.ok, path).toBe(false);
      if (checked.ok) continue;
      expect(checked.reason, path).toContain(path);
      expect(checked.reason, path).not.toMatch(/student-42|private|asleep|many/);
    }
  });
});

describe('MemorySessionStore', () => {
  const capture = () => {
    const lines: Array<Record<string, any>> = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line));
        cb();
      },
    });
    return { lines, logger: createLogger('info', sink) };
  };

  it('loads a record it holds, checked', async () => {
    const store = new MemorySessionStore(60_000);
    const record = sessionRecord('s-ok');
    store.save(record);
    expect(await store.load('s-ok')).toEqual(stored(record));
  });

  it('treats a record that fails its check as absent, and says so once', async () => {
    const { lines, logger } = capture();
    const store = new MemorySessionStore(60_000, logger);
    store.save({ ...sessionRecord('s-v2'), v: 2 } as unknown as SessionRecord);
    expect(await store.load('s-v2')).toBeNull();
    expect(await store.load('s-v2')).toBeNull();
    await new Promise((r) => setImmediate(r));
    expect(lines.filter((l) => l.event === 'session_record_refused')).toEqual([
      expect.objectContaining({ level: 'warn', store: 'memory', sessionId: 's-v2', reason: 'version 2; this server reads version 1' }),
    ]);
  });
});
