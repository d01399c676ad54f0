import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_CONTROL_BYTES, parseControl } from '../src/handler/control.js';

const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

describe('control message parser', () => {
  it('never throws on random text and JSON, and accepts only hello and bye', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.json({ maxDepth: 6 }), fc.jsonValue().map((v) => JSON.stringify(v))), (text) => {
        const msg = parseControl(text);
        expect(msg === null || msg.type === 'hello' || msg.type === 'bye').toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('hello fields are typed and bounded', () => {
    fc.assert(
      fc.property(fc.record({ token: fc.anything(), sessionId: fc.anything(), resumeToken: fc.anything(), client: fc.anything() }, { requiredKeys: [] }), (fields) => {
        const msg = parseControl(JSON.stringify({ type: 'hello', ...fields }));
        if (msg?.type !== 'hello') return;
        for (const k of ['token', 'sessionId', 'resumeToken'] as const) expect(msg[k] === undefined || typeof msg[k] === 'string').toBe(true);
        expect(msg.client === undefined || (typeof msg.client === 'object' && !Array.isArray(msg.client))).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses deep nesting, huge strings and oversized messages without work proportional to them', () => {
    expect(parseControl(nested(100_000))).toBeNull();
    expect(parseControl(JSON.stringify({ type: 'hello', token: 'x'.repeat(9000) }))).toBeNull();
    expect(parseControl(JSON.stringify({ type: 'bye', pad: 'x'.repeat(MAX_CONTROL_BYTES) }))).toBeNull();
    expect(parseControl('{"type":"hello","__proto__":{"polluted":true}}')).toEqual({ type: 'hello' });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
