import pino, { type DestinationStream, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

/**
 * JSON lines to stdout (or the given stream). Every line carries a stable
 * `event` name where it reports one. Image bytes and tokens never reach a
 * log line: the redact list is the last line of defence, not the first.
 * With `pretty` (a person at a terminal), lines are coloured text instead.
 */
export function createLogger(level: string, destination?: DestinationStream, opts: { pretty?: boolean } = {}): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: ['token', '*.token', 'resumeToken', '*.resumeToken', 'image', '*.image'], censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    opts.pretty
      ? pretty({ destination: destination ?? 1, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true })
      : (destination ?? pino.destination({ fd: 1, sync: false })),
  );
}

/** Whether LOG_PRETTY asks for pretty lines: `auto` means when stdout is a terminal. */
export function wantsPretty(setting: 'auto' | 'true' | 'false', stdoutIsTTY: boolean | undefined): boolean {
  return setting === 'true' || (setting === 'auto' && stdoutIsTTY === true);
}
