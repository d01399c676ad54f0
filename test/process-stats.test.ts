import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseStatCpuSeconds, parseStatusRssBytes, readProcessStats } from '../src/utils/process-stats.js';

// A python3 worker's /proc/<pid>/stat: utime 250 and stime 37 ticks.
const STAT = '4242 (python3) S 4200 4242 4200 0 -1 4194304 5000 0 0 0 250 37 0 0 20 0 1 0 123456 300000000 33000 18446744073709551615 1 1 0 0 0 0 0 16781312 2 0 0 0 17 1 0 0 0 0 0';

describe('process stats from /proc', () => {
  it('reads CPU time as utime + stime in clock ticks', () => {
    expect(parseStatCpuSeconds(STAT)).toBeCloseTo(2.87, 6);
  });

  it('counts fields from the last parenthesis: a command name may hold spaces and parentheses', () => {
    expect(parseStatCpuSeconds(STAT.replace('(python3)', '(my (odd) worker 1)'))).toBeCloseTo(2.87, 6);
    expect(parseStatCpuSeconds('garbage')).toBeNull();
    expect(parseStatCpuSeconds('1 (x) S 1 2')).toBeNull();
  });

  it('reads VmRSS in bytes', () => {
    expect(parseStatusRssBytes('Name:\tpython3\nVmPeak:\t  400000 kB\nVmRSS:\t  135140 kB\nThreads:\t1\n')).toBe(135140 * 1024);
    expect(parseStatusRssBytes('Name:\tkthreadd\n')).toBeNull();
  });

  it('reads a process tree laid out like /proc, and a live process on Linux', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'jipjung-proc-'));
    fs.mkdirSync(path.join(root, '4242'));
    fs.writeFileSync(path.join(root, '4242', 'stat'), STAT);
    fs.writeFileSync(path.join(root, '4242', 'status'), 'VmRSS:\t  1000 kB\n');
    expect(readProcessStats(4242, root)).toEqual({ pid: 4242, cpuSeconds: 2.87, rssBytes: 1024000 });
    expect(readProcessStats(4243, root)).toBeNull(); // gone
    fs.rmSync(root, { recursive: true, force: true });
    if (process.platform === 'linux') {
      const self = readProcessStats(process.pid)!;
      expect(self.rssBytes).toBeGreaterThan(1024 * 1024);
      expect(self.cpuSeconds).toBeGreaterThan(0);
    }
  });
});
