/**
 * `npm run bench -- [options]`: see `--help`.
 */
import path from 'node:path';
import { FACES, ROOT, type Faces } from './frames.js';
import { formatReport } from './table.js';
import { DEFAULTS, runBench, writeOutputs, type RunOptions } from './runner.js';

export const USAGE = `npm run bench -- [options]

Modes (one):
  --sessions N[,N…]     fixed N sessions (a list runs one step per N)        [20]
  --find-capacity       raise N until p95 latency > target or > 1% shed; report the largest N that held
  --idle N              open N sessions that send nothing; server RSS per session

Model:
  --model default|noop  the default model, or a model that does nothing     [default]
  --no-model-timing     run the model as it is, without the wrapper that reports its
                        time per unit (then no added latency is measured)

Timing:
  --duration S          measured seconds per step                           [20]
  --lifetime S          each session lasts S s (whole units), then a new one takes
                        its place: sessions come and go, N at a time       [the step]
  --ramp S              seconds over which the sessions open               [5]
  --seed N              seed of the sessions' phases: when in each second a session's
                        units begin, uniform at random as students start    [1]
  --phase-spread S      draw the phases within the first S seconds of the unit period:
                        1 as students who start when they like, 0.2 as a class
                        that starts together                                [1]
  --faces still|moving|turning
                        what the cameras show: the five captures of a student sitting
                        still, a head swaying in the image from frame to frame
                        (the default model places either with its networks on
                        about 3 frames in 10 and follows it in the image on the
                        others), or a head turning 4 degrees a frame (the mesh
                        runs on every frame)                               [still]
  --settle S            seconds between the ramp and the measurement       [2]
  --raw-seconds S       seconds of raw model throughput (0: skip)           [10]
  --raw-each-step       measure it between steps too: each step's efficiency and
                        costs are then taken against the runs just around it

Capacity search:
  --target-ms MS        latency target                                      [500]
  --percentile 50|95|99 latency percentile held to the target              [95]
  --max-shed F          largest shed (or throttled) fraction that holds     [0.01]
  --start N  --max-sessions N  --growth X  --resolution F                  [auto, 3000, 1.5, 0.05]
  --max-others P        a step that fails while other processes take more than P % of a
                        core did not measure the service: it runs once more   [5]

Server:
  --workers W           worker processes                                    [CPU count]
  --env KEY=VALUE       extra server setting (repeatable)
  --server-node-args "…" node flags for the server, e.g. "--cpu-prof --cpu-prof-dir=bench-results/prof"
  --server-root DIR     run the server of another checkout (built, with its own model/),
                        to compare a server change before and after
  --ignore-throttle     keep sending at 5 fps when the server throttles

Baseline:
  --reference           run every step against the single-process reference server
                        (bench/reference/server.py) as well, right after the service's
                        step with the same load, seed and phases, and report the ratios
                        (with --find-capacity, a second search against it)

Output:
  --json [FILE]         write the JSON report (default bench-results/<time>-<model>.json)
                        and the SVG chart next to it
  --quiet               no progress lines on stderr
`;

export function parseArgs(argv: string[]): { options: RunOptions; json: string | null; help: boolean } {
  const o: RunOptions = { ...DEFAULTS, criteria: { ...DEFAULTS.criteria }, serverEnv: {}, serverNodeArgs: [], command: `npm run bench -- ${argv.join(' ')}`.trim() };
  let json: string | null = null;
  let help = false;
  const num = (flag: string, v: string | undefined) => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n)) throw new Error(`${flag} needs a number`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => argv[++i];
    switch (a) {
      case '--help':
      case '-h':
        help = true;
        break;
      case '--sessions':
        o.sessions = (next() ?? '').split(',').map((x) => num('--sessions', x));
        break;
      case '--find-capacity':
        o.findCapacity = true;
        break;
      case '--idle':
        o.idle = num(a, next());
        break;
      case '--model': {
        const m = next();
        if (m !== 'default' && m !== 'noop') throw new Error('--model is default or noop');
        o.model = m;
        break;
      }
      case '--no-model-timing':
        o.modelTiming = false;
        break;
      case '--duration':
        o.durationS = num(a, next());
        break;
      case '--lifetime':
        o.lifetimeS = num(a, next());
        if (o.lifetimeS < 2) throw new Error('--lifetime is at least 2 (seconds)');
        break;
      case '--ramp':
        o.rampS = num(a, next());
        break;
      case '--settle':
        o.settleS = num(a, next());
        break;
      case '--raw-each-step':
        o.rawEachStep = true;
        break;
      case '--raw-seconds':
        o.rawSeconds = num(a, next());
        break;
      case '--target-ms':
        o.criteria.targetMs = num(a, next());
        break;
      case '--percentile': {
        const p = num(a, next());
        if (p !== 50 && p !== 95 && p !== 99) throw new Error('--percentile is 50, 95 or 99');
        o.criteria.percentile = p;
        break;
      }
      case '--max-shed':
        o.criteria.maxShedFraction = num(a, next());
        break;
      case '--start':
        o.start = num(a, next());
        break;
      case '--max-sessions':
        o.maxSessions = num(a, next());
        break;
      case '--growth':
        o.growth = num(a, next());
        break;
      case '--resolution':
        o.resolution = num(a, next());
        break;
      case '--max-others':
        o.maxOthersPercent = num(a, next());
        break;
      case '--workers':
        o.workers = num(a, next());
        break;
      case '--env': {
        const kv = next() ?? '';
        const eq = kv.indexOf('=');
        if (eq <= 0) throw new Error('--env needs KEY=VALUE');
        o.serverEnv[kv.slice(0, eq)] = kv.slice(eq + 1);
        break;
      }
      case '--server-node-args':
        o.serverNodeArgs = (next() ?? '').split(/\s+/).filter(Boolean);
        break;
      case '--server-root':
        o.serverRoot = path.resolve(next() ?? '.');
        break;
      case '--seed':
        o.seed = num(a, next());
        break;
      case '--phase-spread':
        o.phaseSpreadS = num(a, next());
        if (!(o.phaseSpreadS > 0 && o.phaseSpreadS <= 1)) throw new Error('--phase-spread is above 0 and at most 1 (seconds, the unit period)');
        break;
      case '--faces': {
        const faces = next();
        if (!(FACES as readonly string[]).includes(faces)) throw new Error(`--faces is one of ${FACES.join(', ')}`);
        o.faces = faces as Faces;
        break;
      }
      case '--reference':
        o.reference = true;
        break;
      case '--ignore-throttle':
        o.obeyThrottle = false;
        break;
      case '--json':
        json = argv[i + 1] !== undefined && !argv[i + 1].startsWith('--') ? next() : '';
        break;
      case '--quiet':
        o.quiet = true;
        break;
      default:
        throw new Error(`unknown option ${a}`);
    }
  }
  if (!o.findCapacity && o.idle === null && o.sessions.length === 0) o.sessions = [20];
  if (o.reference && o.idle !== null) throw new Error('--reference runs with --sessions or --find-capacity, not --idle');
  if (json === '') {
    const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
    const mode =
      (o.idle !== null ? `idle${o.idle}` : o.findCapacity ? 'capacity' : `n${o.sessions.join('-')}`) +
      (o.phaseSpreadS !== DEFAULTS.phaseSpreadS ? `-spread${o.phaseSpreadS}` : '') +
      (o.faces !== DEFAULTS.faces ? `-${o.faces}` : '') +
      (o.reference ? '-reference' : '');
    json = path.join(ROOT, 'bench-results', `${stamp}-${o.model}-${mode}.json`);
  }
  return { options: o, json, help };
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (parsed.help) {
    process.stdout.write(USAGE);
    return;
  }
  const report = await runBench(parsed.options);
  process.stdout.write(`${formatReport(report)}\n`);
  if (parsed.json) {
    const svg = writeOutputs(report, path.resolve(parsed.json));
    process.stdout.write(`\nJSON: ${path.relative(process.cwd(), path.resolve(parsed.json))}\n`);
    if (svg) process.stdout.write(`SVG:  ${path.relative(process.cwd(), svg)}\n`);
  }
  const broken = [...report.steps, ...(report.reference?.steps ?? [])].filter((s) => !s.arithmetic.ok);
  if (broken.length > 0) process.exitCode = 1;
}

main().catch((err) => {
  process.stderr.write(`${err?.stack ?? err}\n`);
  process.exit(1);
});
