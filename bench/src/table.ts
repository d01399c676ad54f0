/** The report as a table for the terminal. Pure. */
import type { Faces } from './frames.js';
import { capacityRatio, efficiency, referenceRatios, stepRawFps, type BenchReport, type StepReport } from './report.js';

const FACES_SHOWN: Record<Faces, string> = {
  still: ' · faces still (the five face*.jpg captures)',
  moving: ' · faces moving (a head swaying in the image: mostly followed without the mesh)',
  turning: ' · faces turning (4° of yaw a frame: the mesh runs on every frame)',
};

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) => cells.map((x, c) => (c === 0 ? x.padEnd(widths[c]) : x.padStart(widths[c]))).join('  ');
  return [line(headers), widths.map((w) => '─'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

const f = (x: number | null | undefined, digits = 0) => (x === null || x === undefined ? '–' : x.toFixed(digits));

export function formatReport(r: BenchReport): string {
  const out: string[] = [];
  out.push(
    `jipjung bench · model ${r.model.name} (${r.model.spec}) · ${r.workers} workers · ${r.machine.cpus} CPUs (${r.machine.cpuModel}) · load ${r.machine.loadAverage.map((x) => x.toFixed(2)).join(' ')}`,
  );
  if (r.mode !== 'idle') {
    out.push(
      `phases: uniform over the first ${r.phases.spreadS} s of the unit period (seed ${r.phases.seed})` +
        (r.phases.spreadS < 1 ? ': sessions start together, as a class does' : ': sessions start whenever they like') +
        FACES_SHOWN[r.faces ?? 'still'] +
        " · latency = result arrival − scheduled send of the unit's last frame" +
        (r.reference ? ` · each step also against the reference server (${r.reference.server})` : ''),
    );
  }
  for (const [label, raw] of [
    ['before the steps', r.raw],
    ['after the steps', r.rawAfter],
  ] as const) {
    if (!raw) continue;
    out.push(
      `raw model throughput ${label}: ${raw.framesPerSecond} frames/s (${raw.workers} workers, ${raw.seconds} s, no server); model time per unit p50 ${f(raw.modelMsPerUnit?.p50, 1)} ms, p99 ${f(raw.modelMsPerUnit?.p99, 1)} ms; round trip p50 ${f(raw.roundTripMsPerUnit?.p50, 1)} ms (two sessions a worker); worker CPU ${raw.workerUsage.map((w) => f(w.cpuPercent)).join('/')}%; other processes ${f(raw.othersCpuPercent)}% CPU`,
    );
  }
  if (r.steps.length > 0) {
    // With the reference, each N's two rows one above the other.
    const listed: Array<{ step: StepReport; server: string }> = r.reference
      ? [...r.steps.map((step) => ({ step, server: 'service' })), ...r.reference.steps.map((step) => ({ step, server: 'reference' }))].sort(
          (a, b) => a.step.sessions - b.step.sessions || (a.server === 'service' ? -1 : 1),
        )
      : r.steps.map((step) => ({ step, server: '' }));
    const rows = listed.map(({ step: s, server }) => [
      String(s.sessions),
      ...(r.reference ? [server] : []),
      String(s.frames.sent),
      String(s.frames.analysed),
      String(s.frames.shed),
      String(s.frames.rejected),
      String(s.frames.dropped),
      String(s.frames.lost),
      f(s.latencyMs?.p50),
      f(s.latencyMs?.p95),
      f(s.latencyMs?.p99),
      f(s.latencyMs?.max),
      f(s.addedLatencyMs?.p99, 1),
      s.window.resultsPerSessionPerSecond.toFixed(2),
      f(s.window.analysedPerSecond, 0),
      f(s.server?.cpuPercent),
      f(s.server?.rssMaxMB),
      s.workers.map((w) => f(w.cpuPercent)).join('/') || '–',
      s.workers.map((w) => f(w.rssMaxMB)).join('/') || '–',
      f(s.generator?.cpuPercent),
      s.held ? 'held' : s.disturbed ? 'again' : 'NO',
    ]);
    out.push('');
    out.push(
      table(
        ['N', ...(r.reference ? ['server'] : []), 'sent', 'analysed', 'shed', 'rejected', 'dropped', 'lost', 'p50 ms', 'p95', 'p99', 'max', 'added p99', 'res/s/sess', 'frames/s', 'srv CPU%', 'srv RSS MB', 'worker CPU%', 'worker RSS MB', 'gen CPU%', ''],
        rows,
      ),
    );
    for (const { step: s, server } of listed) {
      const notes: string[] = [];
      if (s.lifetimeS !== null) notes.push(`${s.opened} sessions opened and closed, ${s.sessions} at a time, each for ${s.lifetimeS} s`);
      if (!s.arithmetic.ok) notes.push(`ARITHMETIC: ${s.arithmetic.problems.join('; ')}`);
      if (s.reasons.length > 0) notes.push(s.reasons.join(', '));
      if (s.disturbed) notes.push(`other processes took ${s.othersCpuPercent} % of a core: run again`);
      if (Object.keys(s.errors).length > 0) notes.push(`errors ${JSON.stringify(s.errors)}`);
      if (Object.keys(s.frames.droppedByReason).length > 0) notes.push(`dropped ${JSON.stringify(s.frames.droppedByReason)}`);
      if (s.throttledSessions > 0) {
        notes.push(`${s.throttledSessions} sessions throttled (to ${s.minFps} fps, first at ${f(s.firstThrottleS, 1)} s into the window), ${s.frames.withheld} ticks withheld`);
      }
      if (s.aligns > 0) notes.push(`${s.aligns} aligns`);
      if (Object.keys(s.abnormalCloses).length > 0) notes.push(`closes ${JSON.stringify(s.abnormalCloses)}`);
      // The reference has no workers: the raw run measures none of its own.
      const eff = server === 'reference' ? null : efficiency(s, stepRawFps(s, r));
      if (eff !== null) notes.push(`efficiency ${eff}` + (s.rawAround.length > 0 ? ` (raw around the step ${s.rawAround.map((x) => x.framesPerSecond).join(' / ')} frames/s)` : ''));
      if (s.costs && server === 'reference') {
        notes.push(`CPU per analysed frame: reference process ${f(s.costs.serverMs, 2)}, generator ${f(s.costs.generatorMs, 2)} ms`);
      } else if (s.costs) {
        const c = s.costs;
        notes.push(
          `CPU per analysed frame: server ${f(c.serverMs, 2)}, workers ${f(c.workersMs, 2)}, generator ${f(c.generatorMs, 2)} ms; model alone ${f(c.modelAloneMs, 2)} ms, server ÷ model ${f(c.serverToModel, 3)}`,
        );
      }
      if (s.serverSide) {
        const ss = s.serverSide;
        notes.push(
          `server side: queue wait mean ${f(ss.queueWaitMeanMs, 1)} ms (p95 ≈ ${f(ss.queueWaitP95Ms, 0)}), IPC mean ${f(ss.ipcMeanMs, 1)} ms of which model ${f(ss.modelMeanMs, 1)}, event-loop lag p99 ${f(ss.eventLoopLagP99Ms, 1)} ms`,
        );
      }
      if (s.othersCpuPercent !== null) notes.push(`other processes ${f(s.othersCpuPercent)}% CPU (machine ${f(s.machineCpuPercent)}%, load ${f(s.loadAverage, 2)})`);
      if (s.toModelMs && s.fromModelMs) {
        notes.push(
          `last frame sent → model began p50/p99 ${f(s.toModelMs.p50, 1)}/${f(s.toModelMs.p99, 1)} ms, model done → result p50/p99 ${f(s.fromModelMs.p50, 1)}/${f(s.fromModelMs.p99, 1)} ms`,
        );
      }
      if (s.sendLagMs) notes.push(`generator send lag p99 ${f(s.sendLagMs.p99, 1)} ms, max ${f(s.sendLagMs.max, 0)} ms`);
      if (s.serverRssSlopeMBPerMin !== null) notes.push(`server RSS ${f(s.server?.rssStartMB)} → ${f(s.server?.rssEndMB)} MB (slope ${s.serverRssSlopeMBPerMin} MB/min)`);
      out.push(`  N=${s.sessions}${server === 'reference' ? ' reference' : ''}: ${notes.join(' · ')}`);
    }
    if (r.reference) {
      out.push('');
      for (const x of referenceRatios(r.steps, r.reference.steps)) {
        out.push(`service ÷ reference, N=${x.sessions}: latency p50 ${x.p50 ?? '–'}, p95 ${x.p95 ?? '–'}, p99 ${x.p99 ?? '–'}`);
      }
    }
  }
  if (r.capacity) {
    out.push('');
    out.push(
      `capacity: ${r.capacity.sessions} sessions at ${5} fps within p${r.criteria.percentile} ≤ ${r.criteria.targetMs} ms and ≤ ${r.criteria.maxShedFraction * 100}% shed · ${r.capacity.analysedPerSecond} analysed frames/s` +
        (r.capacity.efficiency !== null ? ` · efficiency ${r.capacity.efficiency} of the raw ${r.capacity.rawFramesPerSecond} frames/s` : '') +
        (r.capacity.serverToModel !== null ? ` · server CPU ${r.capacity.serverToModel} of the model's per frame` : ''),
    );
  } else if (r.mode === 'capacity') {
    out.push('');
    out.push('capacity: no step held the target');
  }
  if (r.reference && r.mode === 'capacity') {
    const c = r.reference.capacity;
    const ceiling = r.reference.cpuCeiling ?? null;
    out.push(
      c
        ? `reference capacity: ${c.sessions} sessions · ${c.analysedPerSecond} analysed frames/s · service ÷ reference ${capacityRatio(r) ?? '–'}` +
            (ceiling
              ? ` · at most ${ceiling.ratio} by CPU: ${ceiling.cores} cores × the reference's ${ceiling.referenceMs} ms a frame ÷ the service's ${ceiling.serviceMs} ms (server, workers and load generator)`
              : '')
        : 'reference capacity: no step held the target',
    );
  }
  if (r.idle) {
    const i = r.idle;
    out.push(
      `idle sessions: ${i.opened}/${i.sessions} open · server RSS ${i.rssBeforeMB} → ${i.rssAfterMB} MB · ${i.perSessionKB} KB per idle session`,
    );
  }
  return out.join('\n');
}
