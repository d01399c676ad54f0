import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * JSON lines to stdout (or the given stream). Every line carries a stable
 * `event` name where it reports one. Image bytes and tokens never reach a
 * log line: the redact list is the last line of defence, not the first.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: ['token', '*.token', 'resumeToken', '*.resumeToken', 'image', '*.image'], censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}
