import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { eachLine } from '../src/ipc/worker.js';

/** The lines `eachLine` reports for `chunks` written one after another. */
async function linesOf(chunks: Array<string | Buffer>, maxChars: number): Promise<string[]> {
  const stream = new PassThrough();
  const lines: string[] = [];
  eachLine(stream, maxChars, (line) => lines.push(line));
  const ended = new Promise((resolve) => stream.on('end', resolve));
  for (const c of chunks) stream.write(c);
  stream.end();
  await ended;
  return lines;
}

describe("a worker's stdout and stderr, line by line", () => {
  it('joins lines split across chunks and drops the carriage return', async () => {
    expect(await linesOf(['hel', 'lo\r\nwor', 'ld\n', 'last'], 100)).toEqual(['hello', 'world', 'last']);
  });

  it('keeps a character split across chunks whole', async () => {
    const bytes = Buffer.from('집중\n');
    expect(await linesOf([bytes.subarray(0, 2), bytes.subarray(2)], 100)).toEqual(['집중']);
  });

  it('cuts a line longer than the limit and drops the rest of it, so output without newlines cannot grow memory', async () => {
    const lines = await linesOf(['x'.repeat(60), 'y'.repeat(60), 'z'.repeat(1000), '\nnext\n'], 100);
    expect(lines).toEqual([`${'x'.repeat(60)}${'y'.repeat(40)} [line cut at 100 characters]`, 'next']);
  });
});
