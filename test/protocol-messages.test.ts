/**
 * The client protocol's messages (src/protocol/): the builders give what
 * the schemas describe, the schemas refuse what the protocol does not
 * allow, and docs/protocol.md lists the same messages and fields and shows
 * only valid examples.
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { parseControl } from '../src/handler/control.js';
import { errorMessage } from '../src/handler/errors.js';
import {
  batchResult,
  byeSchema,
  countsSchema,
  frameEntrySchema,
  helloSchema,
  serverMessageSchema,
  summaryMessage,
  windowResult,
  alignSchema,
  batchResultSchema,
  errorMessageSchema,
  noticeSchema,
  summarySchema,
  throttleSchema,
  welcomeSchema,
  windowResultSchema,
  type SummaryInput,
} from '../src/protocol/messages.js';

const counts = { lost: 1, rejected: 0, duplicate: 0, late: 2, rateLimited: 0, shed: 0 };
const outcome = { score: 82.5, state: 'focused' as const, signals: { yaw: 4.2, reasons: [] } };

describe('result builders', () => {
  it('a batch result: the model\'s frame entries with the server\'s seqs, the wire spelling of framesAnalyzed', () => {
    const msg = batchResult({
      resultId: 7,
      seqFrom: 30,
      seqTo: 34,
      framesAnalysed: 2,
      outcome,
      counts,
      frames: [{ analysed: true, box: [0.4, 0.2, 0.2, 0.3], seq: 999 }, { analysed: false, error: 'undecodable' }],
      seqs: [30, 33],
    });
    expect(serverMessageSchema.parse(msg)).toEqual(msg);
    expect(msg).toEqual({
      type: 'result',
      kind: 'batch',
      resultId: 7,
      seqFrom: 30,
      seqTo: 34,
      framesAnalyzed: 2,
      score: 82.5,
      state: 'focused',
      signals: outcome.signals,
      counts,
      frames: [
        { analysed: true, box: [0.4, 0.2, 0.2, 0.3], seq: 30 },
        { analysed: false, error: 'undecodable', seq: 33 },
      ],
    });
    // A copy: counts the unit goes on changing do not change a message already sent.
    expect(msg.counts).not.toBe(counts);
  });

  it('a shed or failed batch: no frames, no score', () => {
    const msg = batchResult({ resultId: 1, seqFrom: 0, seqTo: 4, framesAnalysed: 0, outcome: { score: null, state: 'unknown', signals: { error: 'model_error' } }, counts, frames: [], seqs: [0, 1, 2] });
    expect(serverMessageSchema.parse(msg)).toMatchObject({ frames: [], score: null, state: 'unknown' });
  });

  it('refuses frame entries without a seq each', () => {
    expect(() => batchResult({ resultId: 1, seqFrom: 0, seqTo: 4, framesAnalysed: 2, outcome, counts, frames: [{ analysed: true }, { analysed: true }], seqs: [0] })).toThrow(RangeError);
  });

  it('a window result: no frames', () => {
    const msg = windowResult({ resultId: 8, seqFrom: 0, seqTo: 49, framesAnalysed: 47, outcome, counts });
    expect(serverMessageSchema.parse(msg)).toEqual(msg);
    expect(msg).not.toHaveProperty('frames');
    expect(msg).toMatchObject({ kind: 'window', framesAnalyzed: 47 });
  });
});

describe('summary builder', () => {
  const input: SummaryInput = {
    sessionId: 's-1',
    userId: 'student-42',
    durationMs: 61_234,
    outcomes: { received: 300, analysed: 291, rejected: { jpeg_truncated: 2 }, dropped: { duplicate: 1, shed: 6 }, lost: 1, resyncs: 0 },
    clockSkewMs: 41.6,
    results: 66,
    scoreSum: 78.44 * 291,
    scoreFrames: 291,
    stateSeconds: { focused: 51.04, distracted: 8, drowsy: 0, absent: 0.96, unknown: 0 },
  };

  it('sums the outcomes and rounds as docs/protocol.md says', () => {
    const msg = summaryMessage(input);
    expect(summarySchema.parse(msg)).toEqual(msg);
    expect(msg).toEqual({
      type: 'summary',
      sessionId: 's-1',
      userId: 'student-42',
      durationMs: 61_234,
      framesReceived: 300,
      framesAnalyzed: 291,
      framesRejected: 2,
      framesDropped: 7,
      framesLost: 1,
      rejected: { jpeg_truncated: 2 },
      dropped: { duplicate: 1, shed: 6 },
      resyncs: 0,
      clockSkewMs: 42,
      results: 66,
      meanScore: 78.4,
      stateSeconds: { focused: 51, distracted: 8, drowsy: 0, absent: 1, unknown: 0 },
    });
    expect(msg.framesReceived).toBe(msg.framesAnalyzed + msg.framesRejected + msg.framesDropped);
  });

  it('has no mean score and no clock skew before any frame, and never a negative duration', () => {
    const msg = summaryMessage({ ...input, outcomes: { received: 0, analysed: 0, rejected: {}, dropped: {}, lost: 0, resyncs: 0 }, clockSkewMs: null, scoreSum: 0, scoreFrames: 0, durationMs: -40 });
    expect(summarySchema.parse(msg)).toMatchObject({ meanScore: null, clockSkewMs: null, durationMs: 0 });
  });
});

describe('server message schemas', () => {
  const batch = batchResult({ resultId: 1, seqFrom: 0, seqTo: 4, framesAnalysed: 1, outcome, counts, frames: [{ analysed: true }], seqs: [0] });

  it('refuse a field the protocol does not name, a missing one, and a result of one kind shaped as the other', () => {
    expect(serverMessageSchema.safeParse({ ...batch, framesAnalysed: 1 }).success).toBe(false);
    const { counts: _, ...noCounts } = batch;
    expect(serverMessageSchema.safeParse(noCounts).success).toBe(false);
    expect(serverMessageSchema.safeParse({ ...batch, kind: 'window' }).success).toBe(false);
    expect(serverMessageSchema.safeParse({ ...batch, state: 'asleep' }).success).toBe(false);
    expect(serverMessageSchema.safeParse({ ...batch, score: 101 }).success).toBe(false);
    expect(serverMessageSchema.safeParse({ type: 'hello' }).success).toBe(false);
  });

  it('take a batch result coalesced on a slow connection', () => {
    expect(serverMessageSchema.safeParse({ ...batch, coalesced: 3 }).success).toBe(true);
  });

  it('take every error the registry builds', () => {
    expect(serverMessageSchema.parse(errorMessage('jpeg_truncated', { seq: 41 }))).toMatchObject({ code: 'jpeg_truncated', seq: 41, fatal: false });
    expect(serverMessageSchema.parse(errorMessage('unauthorized', { message: 'the token has expired' }))).not.toHaveProperty('seq');
    expect(serverMessageSchema.safeParse({ ...errorMessage('internal'), code: 'no_such_code' }).success).toBe(false);
  });
});

describe('control messages', () => {
  it('hello: bounded strings, an object for client, a lastResultId that is a count or ignored', () => {
    expect(parseControl(JSON.stringify({ type: 'hello', token: 't', sessionId: 's', resumeToken: 'r', lastResultId: 4, client: { library: 'x' } }))).toEqual({
      type: 'hello',
      token: 't',
      sessionId: 's',
      resumeToken: 'r',
      lastResultId: 4,
      client: { library: 'x' },
    });
    for (const lastResultId of [-1, 1.5, '4', null]) expect(parseControl(JSON.stringify({ type: 'hello', lastResultId }))).toStrictEqual({ type: 'hello' });
    expect(parseControl(JSON.stringify({ type: 'hello', sessionId: 's'.repeat(129) }))).toBeNull();
    expect(parseControl(JSON.stringify({ type: 'hello', resumeToken: 'r'.repeat(257) }))).toBeNull();
    expect(parseControl(JSON.stringify({ type: 'hello', token: null }))).toBeNull();
    expect(parseControl(JSON.stringify({ type: 'hello', client: ['x'] }))).toBeNull();
  });

  it('bye: other fields dropped; any other type refused', () => {
    expect(parseControl('{"type":"bye","now":true}')).toStrictEqual({ type: 'bye' });
    expect(parseControl('{"type":"welcome"}')).toBeNull();
    expect(parseControl('[{"type":"bye"}]')).toBeNull();
  });
});

const doc = fs.readFileSync(fileURLToPath(new URL('../docs/protocol.md', import.meta.url)), 'utf8');

describe('docs/protocol.md', () => {
  it('shows only valid messages in its JSON examples', () => {
    const blocks = [...doc.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]);
    expect(blocks.length).toBeGreaterThanOrEqual(5);
    const types = new Set<string>();
    for (const text of blocks) {
      const value = JSON.parse(text) as { type: string };
      types.add(value.type);
      if (value.type === 'hello' || value.type === 'bye') expect(parseControl(text.trim()), text).not.toBeNull();
      else expect(serverMessageSchema.safeParse(value).error?.issues, text).toBeUndefined();
    }
    expect([...types].sort()).toEqual(['hello', 'notice', 'result', 'summary', 'welcome']);
  });

  // The "Message reference" table: each message's fields, `?` when optional, and their type in words.
  const named = new Map<z.ZodType, string>([
    [countsSchema, 'counts'],
    [frameEntrySchema, 'frame entry'],
    [errorMessageSchema.shape.code, 'error code'],
    [welcomeSchema.shape.model.unwrap(), '`{name, version}`'],
    [summarySchema.shape.rejected, 'counts by error code'],
    [summarySchema.shape.dropped, 'counts by drop reason'],
    [summarySchema.shape.stateSeconds, 'seconds by state'],
  ]);
  const words = (s: z.ZodType): string => {
    const name = named.get(s);
    if (name) return name;
    const def = s._zod.def as unknown as Record<string, any>;
    switch (def.type) {
      case 'optional':
      case 'catch':
        return words(def.innerType);
      case 'nullable':
        return `${words(def.innerType)} or null`;
      case 'number':
        return (s as z.ZodNumber).isInt ? 'integer' : 'number';
      case 'literal':
        return def.values.map((v: unknown) => `\`${String(v)}\``).join(' or ');
      case 'enum':
        return Object.values(def.entries as Record<string, string>).map((v) => `\`${v}\``).join('/');
      case 'record':
        return 'object';
      case 'array':
        return `array of ${words(def.element)}`;
      default:
        return def.type;
    }
  };
  const fields = (schema: z.ZodObject) =>
    Object.entries(schema.shape)
      .filter(([key]) => key !== 'type' && key !== 'kind')
      .map(([key, s]) => `\`${key}\`${(s as z.ZodType)._zod.optin === 'optional' ? '?' : ''} ${words(s as z.ZodType)}`)
      .join(', ') || '—';
  const messages: Array<[string, 'client' | 'server', z.ZodObject]> = [
    ['`hello`', 'client', helloSchema],
    ['`bye`', 'client', byeSchema],
    ['`welcome`', 'server', welcomeSchema],
    ['`result`/`batch`', 'server', batchResultSchema],
    ['`result`/`window`', 'server', windowResultSchema],
    ['`error`', 'server', errorMessageSchema],
    ['`notice`', 'server', noticeSchema],
    ['`throttle`', 'server', throttleSchema],
    ['`align`', 'server', alignSchema],
    ['`summary`', 'server', summarySchema],
  ];

  it('lists every message with its fields and their types', () => {
    const section = doc.slice(doc.indexOf('### Message reference'), doc.indexOf('## Frame outcomes'));
    const rows = [...section.matchAll(/^\| (`[a-z]+`(?:\/`[a-z]+`)?) \| (client|server) \| (.+) \|$/gm)].map((m) => `| ${m[1]} | ${m[2]} | ${m[3]} |`);
    expect(rows).toEqual(messages.map(([name, from, schema]) => `| ${name} | ${from} | ${fields(schema)} |`));
    // Every message of the unions has its row.
    expect(messages.filter(([, from]) => from === 'server')).toHaveLength(serverMessageSchema.options.length + 1);
  });
});
