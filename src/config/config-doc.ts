import { configSchema } from './config.js';

/** The default of a schema field, or undefined; machine-dependent defaults are described instead. */
const MACHINE_DEPENDENT = new Set(['WORKERS', 'FRAME_BUDGET_BYTES', 'INSTANCE_ID']);

function defaultOf(key: string): string {
  if (MACHINE_DEPENDENT.has(key)) return 'depends on the machine';
  const field = configSchema.shape[key as keyof typeof configSchema.shape];
  const parsed = field.safeParse(undefined);
  if (!parsed.success || parsed.data === undefined) return '—';
  return `\`${String(parsed.data)}\``;
}

/** docs/config.md, rendered from the schema: `npm run docs:config` writes it and a test checks it. */
export function renderConfigDoc(): string {
  const rows = Object.entries(configSchema.shape).map(([key, field]) => {
    const flag = `--${key.toLowerCase().replace(/_/g, '-')}`;
    return `| \`${key}\` | \`${flag}\` | ${defaultOf(key)} | ${field.description ?? ''} |`;
  });
  return [
    '# Configuration',
    '',
    'Every setting is an environment variable, or the matching command-line flag (which wins):',
    '`npm start -- --port 9000` or `PORT=9000 npm start`. The whole configuration is validated once at',
    'start-up against one schema (`src/config/config.ts`); every problem is reported together and the',
    'process exits with status 2. Names carry their unit (`_MS`, `_BYTES`, `_FRAMES`).',
    '',
    'This file is generated from the schema by `npm run docs:config`; `test/config.test.ts` fails when',
    'it is out of date.',
    '',
    '| variable | flag | default | meaning |',
    '|---|---|---|---|',
    ...rows,
    '',
    '`WINDOW_FRAMES` must be a multiple of `BATCH_FRAMES`.',
    '',
  ].join('\n');
}
