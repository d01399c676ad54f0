import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MODEL_STATES, parseError, parseFrameDone, parseReady, parseResult, ReplyError, type ResultRequest } from '../src/ipc/messages.js';
import { TEST_DIR } from './helpers/frames.js';

const REPLIES = JSON.parse(fs.readFileSync(path.join(TEST_DIR, 'golden', 'ipc', 'replies.json'), 'utf8')) as {
  request: ResultRequest;
  cases: Array<{ name: string; valid: boolean; body: unknown; request?: ResultRequest }>;
};

describe('RESULT bodies (test/golden/ipc/replies.json, shared with model/tests/test_replies.py)', () => {
  for (const c of REPLIES.cases) {
    it(`${c.name}: ${c.valid ? 'accepted' : 'refused'}`, () => {
      const parse = () => parseResult(c.body, c.request ?? REPLIES.request);
      if (c.valid) expect(parse).not.toThrow();
      else expect(parse).toThrow(ReplyError);
    });
  }

  it('what passes carries only the fields of the protocol, and the frame entries\' own fields', () => {
    const c = REPLIES.cases.find((x) => x.name.startsWith("fields of the model's own"))!;
    const r = parseResult(c.body, REPLIES.request);
    expect(Object.keys(r).sort()).toEqual(['batch', 'context', 'frames', 'modelMs', 'window']);
    expect(r.frames[0]).toEqual({ analysed: true, face: true, box: [1, 2, 3, 4] });
  });

  it('a refusal names where and what, never the value sent', () => {
    const body = { ...(REPLIES.cases[0].body as object), batch: { score: '<script>alert(1)</script>', state: '<b>x</b>', signals: {} } };
    const err = (() => {
      try {
        parseResult(body, REPLIES.request);
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err?.message).toMatch(/RESULT\.batch\.score/);
    expect(err?.message).not.toMatch(/script|<b>/);
  });

  it('never throws anything but ReplyError, whatever the JSON', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.nat({ max: 6 }), fc.boolean(), (body, frames, closesWindow) => {
        try {
          parseResult(body, { frames, closesWindow });
        } catch (err) {
          expect(err).toBeInstanceOf(ReplyError);
        }
      }),
    );
  });
});

describe('the other messages from a worker', () => {
  it('READY and ERROR are checked too', () => {
    expect(parseReady({ protocol: 1, model: 'm', version: '1', pid: 42 })).toMatchObject({ pid: 42 });
    expect(() => parseReady({ protocol: '1', model: 'm', version: '1', pid: 42 })).toThrow(ReplyError);
    expect(() => parseReady({ protocol: 1, model: 'm', version: '1', pid: -1 })).toThrow(ReplyError);
    expect(parseError({ code: 'model_error', message: 'ValueError: bad' }).message).toBe('ValueError: bad');
    expect(() => parseError({ code: 5, message: ['no'] })).toThrow(ReplyError);
  });

  it('FRAME_DONE names the seq it acknowledges and a model time', () => {
    expect(parseFrameDone({ seq: 7, modelMs: 4.5 }, 7)).toEqual({ seq: 7, modelMs: 4.5 });
    expect(() => parseFrameDone({ seq: 8, modelMs: 4.5 }, 7)).toThrow(/not the seq/);
    expect(() => parseFrameDone({ seq: 7, modelMs: -1 }, 7)).toThrow(ReplyError);
    expect(() => parseFrameDone({ seq: 7 }, 7)).toThrow(ReplyError);
    expect(() => parseFrameDone({ seq: 7, modelMs: true }, 7)).toThrow(ReplyError);
  });

  it('the states a model may report are those of the Python model interface', () => {
    const source = fs.readFileSync(path.join(TEST_DIR, '..', 'model', 'jipjung_model', 'interface.py'), 'utf8');
    const line = /^STATES = \((.*)\)$/m.exec(source);
    expect(line).not.toBeNull();
    expect([...MODEL_STATES]).toEqual([...line![1].matchAll(/"([a-z]+)"/g)].map((m) => m[1]));
  });
});
