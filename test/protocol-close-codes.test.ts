/**
 * One table of close codes (src/protocol/close-codes.ts), seen from three
 * places that cannot import it alike: the error registry, docs/errors.md
 * ("Close codes") and the browser client's copy, which decides its
 * reconnects.
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ERRORS, type ErrorSpec } from '../src/handler/errors.js';
import { CLOSE_CODES, closeCodeName, type CloseCodeSpec } from '../src/protocol/close-codes.js';
import * as client from '../web/jipjung-client.js';

const table = Object.entries(CLOSE_CODES) as Array<[string, CloseCodeSpec]>;

/** What the client needs of a row: its code and reconnect rule. */
const rule = ({ code, retry, minRetryDelayMs, retryAfterInReason }: CloseCodeSpec) => ({
  code,
  retry,
  ...(minRetryDelayMs === undefined ? {} : { minRetryDelayMs }),
  ...(retryAfterInReason === undefined ? {} : { retryAfterInReason }),
});

/** The "reconnect" column, in words. */
const reconnectText = (s: CloseCodeSpec): string =>
  s.retry === 'no'
    ? 'no'
    : s.retry === 'unless_ended'
      ? 'yes, unless the summary came'
      : `yes${s.minRetryDelayMs ? `, after at least ${s.minRetryDelayMs} ms` : ''}${s.retryAfterInReason ? ", after the reason's `retryAfterMs`" : ''}`;

const doc = fs.readFileSync(fileURLToPath(new URL('../docs/errors.md', import.meta.url)), 'utf8');
const section = doc.slice(doc.indexOf('## Close codes'));
const rows = [...section.matchAll(/^\| (\d{4}) \| `([a-z_]+)` \| ([^|]+) \| (.+) \|$/gm)].map((m) => ({ code: Number(m[1]), name: m[2], reconnect: m[3], when: m[4] }));

describe('the close-code table', () => {
  it('names each code once', () => {
    const codes = table.map(([, s]) => s.code);
    expect(new Set(codes).size).toBe(codes.length);
    for (const [name, s] of table) expect(closeCodeName(s.code)).toBe(name);
    expect(closeCodeName(4000)).toBeUndefined();
  });

  it('holds every close code of the error registry, and an error named as a close closes with it', () => {
    for (const [code, spec] of Object.entries(ERRORS) as Array<[string, ErrorSpec]>) {
      if (spec.closeCode !== undefined) expect(closeCodeName(spec.closeCode), code).toBeDefined();
      if (code in CLOSE_CODES) expect(spec.closeCode, code).toBe(CLOSE_CODES[code as keyof typeof CLOSE_CODES].code);
    }
  });

  it('is what docs/errors.md lists, row for row', () => {
    expect(rows.map((r) => r.code)).toEqual(table.map(([, s]) => s.code));
    for (const [name, s] of table) {
      expect(rows.find((r) => r.code === s.code), String(s.code)).toEqual({ code: s.code, name, reconnect: reconnectText(s), when: s.sent });
    }
  });

  it('is what the browser client carries', () => {
    expect(client.CLOSE_CODES).toStrictEqual(Object.fromEntries(table.map(([name, s]) => [name, rule(s)])));
    expect([...client.NO_RETRY_CLOSE_CODES].sort()).toEqual(table.filter(([, s]) => s.retry === 'no').map(([, s]) => s.code).sort());
  });

  it('decides whether the browser client reconnects', () => {
    for (const [name, s] of table) {
      expect(client.closeRule(s.code), name).toEqual({ name, ...rule(s) });
      expect(client.shouldReconnect(s.code, false), `${name}, no summary`).toBe(s.retry !== 'no');
      expect(client.shouldReconnect(s.code, true), `${name}, after the summary`).toBe(s.retry === 'yes');
    }
    // Codes the protocol does not name (the client's own 4000 when no welcome came, say) are retried.
    expect(client.closeRule(4000)).toBeNull();
    expect(client.shouldReconnect(4000, true)).toBe(true);
  });
});
