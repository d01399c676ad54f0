/**
 * CPU time and resident memory of a process, read from Linux's /proc. The
 * parsers are pure (text in, numbers out); only `readProcessStats` reads.
 * On other systems, or for a process that has just exited, it returns null.
 */
import fs from 'node:fs';

/**
 * /proc reports times in clock ticks of USER_HZ, which the kernel fixes at
 * 100 for user space on x86 and arm64 (sysconf(_SC_CLK_TCK) is not reachable
 * from Node).
 */
export const CLOCK_TICKS_PER_SECOND = 100;

export interface ProcessStats {
  pid: number;
  /** User plus system CPU time since the process started, in seconds. */
  cpuSeconds: number;
  /** Resident set size, in bytes. */
  rssBytes: number;
}

/**
 * utime + stime from the text of /proc/<pid>/stat, in seconds. The second
 * field (the command name, in parentheses) may itself hold spaces and
 * parentheses, so fields are counted from the last `)`.
 */
export function parseStatCpuSeconds(text: string): number | null {
  const end = text.lastIndexOf(')');
  if (end < 0) return null;
  // Fields from the third one (state) on; utime and stime are fields 14 and 15.
  const fields = text.slice(end + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime) || fields.length < 13) return null;
  return (utime + stime) / CLOCK_TICKS_PER_SECOND;
}

/** VmRSS from the text of /proc/<pid>/status, in bytes (the kernel writes it in kB). */
export function parseStatusRssBytes(text: string): number | null {
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(text);
  return m ? Number(m[1]) * 1024 : null;
}

export function readProcessStats(pid: number, procRoot = '/proc'): ProcessStats | null {
  try {
    const cpuSeconds = parseStatCpuSeconds(fs.readFileSync(`${procRoot}/${pid}/stat`, 'utf8'));
    const rssBytes = parseStatusRssBytes(fs.readFileSync(`${procRoot}/${pid}/status`, 'utf8'));
    if (cpuSeconds === null || rssBytes === null) return null;
    return { pid, cpuSeconds, rssBytes };
  } catch {
    return null; // no /proc (not Linux), or the process is gone
  }
}
