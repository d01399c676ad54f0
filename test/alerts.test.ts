/**
 * deploy/prometheus/alerts.yml, without Prometheus: the file is the rule
 * file Prometheus expects, every series an alert asks for is one the
 * instance registers (with labels it has, and label values it can take),
 * Prometheus' configuration loads it, and every alert has its section in
 * docs/runbook.md and its case in alerts.test.yml (run by `promtool test
 * rules` where Prometheus is installed).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DROP_REASONS } from '../src/handler/outcomes.js';
import { RESTART_CAUSES } from '../src/ipc/worker-pool.js';
import { Metrics } from '../src/server/metrics.js';

const ROOT = path.join(import.meta.dirname, '..');
const read = (...parts: string[]) => fs.readFileSync(path.join(ROOT, ...parts), 'utf8');

type Yaml = string | Yaml[] | { [key: string]: Yaml };

/**
 * The block style of YAML our deploy files are written in: mappings,
 * sequences (`- ` items, an item may open a mapping), plain and double-quoted
 * scalars, `|` literal blocks, comments. Anything else (flow style, anchors,
 * tabs) throws, so the file cannot drift into a form this check misreads.
 */
function parseYaml(text: string): Yaml {
  const lines = text.split('\n').map((raw, i) => ({ raw, n: i + 1 }));
  let at = 0;
  const fail = (n: number, why: string): never => {
    throw new Error(`line ${n}: ${why}`);
  };
  const indentOf = (s: string) => s.length - s.trimStart().length;
  const content = (s: string) => s.trim() !== '' && !s.trimStart().startsWith('#');
  const skipBlank = () => {
    while (at < lines.length && !content(lines[at].raw)) at++;
  };
  const scalar = (s: string, n: number): string => {
    let v = s.trim();
    if (v.startsWith('"')) {
      const m = /^"((?:[^"\\]|\\.)*)"\s*(#.*)?$/.exec(v) ?? fail(n, `unterminated string: ${v}`);
      return JSON.parse(`"${m[1]}"`);
    }
    v = v.replace(/\s+#.*$/, '');
    if (/^[[{&*!'>]/.test(v)) fail(n, `not block-style YAML: ${v}`);
    return v;
  };
  const literal = (parentIndent: number): string => {
    const out: string[] = [];
    let indent = -1;
    while (at < lines.length) {
      const { raw } = lines[at];
      if (raw.trim() === '') {
        out.push('');
        at++;
        continue;
      }
      if (indent < 0) indent = indentOf(raw);
      if (indentOf(raw) < indent || indent <= parentIndent) break;
      out.push(raw.slice(indent));
      at++;
    }
    return `${out.join('\n').replace(/\n+$/, '')}\n`;
  };
  // A value after `key:` or `- `: inline, a literal block, or a nested block below.
  const value = (rest: string, indent: number, n: number): Yaml => {
    if (rest.trim() === '|') return literal(indent);
    if (rest.trim() !== '' && !rest.trim().startsWith('#')) return scalar(rest, n);
    skipBlank();
    if (at >= lines.length || indentOf(lines[at].raw) <= indent) {
      // A sequence may sit at its key's indentation.
      if (at < lines.length && indentOf(lines[at].raw) === indent && lines[at].raw.trimStart().startsWith('- ')) return block(indent);
      return '';
    }
    return block(indentOf(lines[at].raw));
  };
  const block = (indent: number): Yaml => {
    skipBlank();
    const first = lines[at];
    if (first.raw.includes('\t')) fail(first.n, 'tab');
    if (first.raw.trimStart().startsWith('- ')) {
      const items: Yaml[] = [];
      while (at < lines.length) {
        skipBlank();
        if (at >= lines.length) break;
        const { raw, n } = lines[at];
        if (indentOf(raw) !== indent || !raw.trimStart().startsWith('- ')) break;
        const rest = raw.slice(indent + 2);
        const key = /^([\w.-]+):(?:\s+(.*))?$/.exec(rest);
        if (key) {
          // `- key: value` opens a mapping whose other keys sit two columns in.
          lines[at] = { raw: `${' '.repeat(indent + 2)}${rest}`, n };
          items.push(block(indent + 2));
        } else {
          at++;
          items.push(value(rest, indent, n));
        }
      }
      return items;
    }
    const map: Record<string, Yaml> = {};
    while (at < lines.length) {
      skipBlank();
      if (at >= lines.length) break;
      const { raw, n } = lines[at];
      if (raw.includes('\t')) fail(n, 'tab');
      if (indentOf(raw) < indent) break;
      if (indentOf(raw) > indent) fail(n, 'unexpected indentation');
      if (raw.trimStart().startsWith('- ')) break;
      const m = /^([\w.-]+):(?:\s+(.*))?$/.exec(raw.trim()) ?? fail(n, `not a key: ${raw.trim()}`);
      if (m[1] in map) fail(n, `duplicate key ${m[1]}`);
      at++;
      map[m[1]] = value(m[2] ?? '', indent, n);
    }
    return map;
  };
  const doc = block(0);
  skipBlank();
  if (at < lines.length) fail(lines[at].n, 'unparsed');
  return doc;
}

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: { severity: string };
  annotations: { summary: string; description: string; runbook_url: string };
}

const rules = (parseYaml(read('deploy', 'prometheus', 'alerts.yml')) as unknown as { groups: Array<{ name: string; rules: Rule[] }> }).groups.flatMap(
  (g) => g.rules,
);

/** Every series the instance can export, with its label names: the metrics module's registry, histograms' suffixes included. */
function exportedSeries(): Map<string, Set<string>> {
  // Only the registered names are read; nothing is scraped, so the sources are never asked.
  const metrics = new Metrics({} as ConstructorParameters<typeof Metrics>[0]);
  const out = new Map<string, Set<string>>();
  for (const m of metrics.registry.getMetricsAsArray()) {
    const labels = new Set((m as unknown as { labelNames: string[] }).labelNames);
    const type = (m as unknown as { type: string }).type;
    out.set(m.name, labels);
    if (type === 'histogram') {
      out.set(`${m.name}_bucket`, new Set([...labels, 'le']));
      out.set(`${m.name}_sum`, labels);
      out.set(`${m.name}_count`, labels);
    }
  }
  return out;
}

/** PromQL's functions, aggregations and keywords: every other identifier in an expression is a series name. */
const PROMQL_WORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);
/** Labels Prometheus adds to every series it scrapes. */
const TARGET_LABELS = new Set(['job', 'instance']);
/** Prometheus' own series for each target: whether its scrape worked. */
const PROMETHEUS_SERIES = new Set(['up']);

/** The series an expression reads, each with its label matchers (`name`, `value`). */
function seriesIn(expr: string): Array<{ name: string; matchers: Array<[string, string]> }> {
  const found: Array<{ name: string; matchers: Array<[string, string]> }> = [];
  // Grouping label lists are labels, not series.
  const text = expr.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ').replace(/\[[^\]]*\]/g, ' ');
  for (const m of text.matchAll(/([a-zA-Z_:][\w:]*)\s*(\{[^}]*\})?(\s*\()?/g)) {
    const [, name, selector, call] = m;
    if (call || PROMQL_WORDS.has(name.toLowerCase())) continue;
    // A template or a number's exponent is not a series.
    if (/^\d/.test(name)) continue;
    const matchers = [...(selector ?? '').matchAll(/(\w+)\s*(?:=~|!=|!~|=)\s*"([^"]*)"/g)].map((x): [string, string] => [x[1], x[2]]);
    found.push({ name, matchers });
  }
  return found;
}

describe('deploy/prometheus/alerts.yml', () => {
  it('is a rule file: named alerts with an expression, a severity and the annotations an operator needs', () => {
    expect(rules.length).toBeGreaterThanOrEqual(10);
    const names = rules.map((r) => r.alert);
    expect(new Set(names).size).toBe(names.length);
    for (const r of rules) {
      expect(Object.keys(r).sort(), r.alert).toEqual(expect.arrayContaining(['alert', 'annotations', 'expr', 'labels']));
      for (const key of Object.keys(r)) expect(['alert', 'expr', 'for', 'labels', 'annotations'], `${r.alert}: ${key}`).toContain(key);
      expect(r.alert).toMatch(/^Jipjung[A-Z]\w+$/);
      expect(typeof r.expr, r.alert).toBe('string');
      expect(r.expr.trim().length, r.alert).toBeGreaterThan(0);
      if (r.for !== undefined) expect(r.for, r.alert).toMatch(/^\d+[smh]$/);
      expect(['critical', 'warning'], r.alert).toContain(r.labels.severity);
      expect(r.annotations.summary, r.alert).toBeTruthy();
      expect(r.annotations.description, r.alert).toBeTruthy();
      expect(r.annotations.runbook_url, r.alert).toBe(`docs/runbook.md#${r.alert.toLowerCase()}`);
    }
  });

  it('asks only for series the instance registers, with their own labels and values they take', () => {
    const exported = exportedSeries();
    // The check itself: a name the module does not register is caught.
    expect(seriesIn('rate(jipjung_no_such_total{reason="shed"}[5m]) > 0').map((s) => s.name)).toEqual(['jipjung_no_such_total']);
    const problems: string[] = [];
    const closedSets: Record<string, readonly string[]> = { reason: DROP_REASONS, cause: RESTART_CAUSES };
    let checked = 0;
    for (const r of rules) {
      const series = seriesIn(r.expr);
      expect(series.length, r.alert).toBeGreaterThan(0);
      for (const { name, matchers } of series) {
        checked++;
        if (PROMETHEUS_SERIES.has(name)) continue;
        const labels = exported.get(name);
        if (!labels) {
          problems.push(`${r.alert}: ${name} is not registered`);
          continue;
        }
        for (const [label, v] of matchers) {
          if (!labels.has(label) && !TARGET_LABELS.has(label)) problems.push(`${r.alert}: ${name} has no label ${label}`);
          if (closedSets[label] && !closedSets[label].includes(v)) problems.push(`${r.alert}: ${name}{${label}="${v}"} never exists`);
        }
      }
    }
    expect(problems).toEqual([]);
    expect(checked).toBeGreaterThanOrEqual(rules.length);
  });

  it('is loaded by the shipped Prometheus configuration', () => {
    const config = parseYaml(read('deploy', 'prometheus', 'prometheus.yml')) as unknown as { rule_files?: string[]; scrape_configs: Array<{ job_name: string }> };
    // Relative paths in rule_files are taken from the configuration file's directory.
    expect(config.rule_files).toContain('alerts.yml');
    // The alerts match on the job that scrapes the instances.
    expect(config.scrape_configs.map((s) => s.job_name)).toContain('jipjung');
    for (const r of rules.filter((x) => x.expr.includes('job='))) expect(r.expr, r.alert).toContain('job="jipjung"');
  });

  it('has a section in docs/runbook.md and a promtool case for every alert', () => {
    const anchors = new Set([...read('docs', 'runbook.md').matchAll(/^#{2,4} (.+)$/gm)].map((m) => m[1].trim().toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-')));
    const cases = read('deploy', 'prometheus', 'alerts.test.yml');
    for (const r of rules) {
      expect(anchors.has(r.alert.toLowerCase()), `runbook section for ${r.alert}`).toBe(true);
      expect(cases, `promtool case for ${r.alert}`).toMatch(new RegExp(`alertname: ${r.alert}\\b`));
    }
  });
});

describe('the YAML reader of this test', () => {
  it('reads nested mappings, sequences of mappings, quoted strings and literal blocks', () => {
    const doc = parseYaml(
      [
        '# a comment',
        'groups:',
        '  - name: g # trailing comment',
        '    rules:',
        '      - alert: A',
        '        expr: |',
        '          sum(x)',
        '            > 1',
        '        labels:',
        '          severity: "crit \\"ical\\""',
        'list:',
        '- one',
        '- two',
      ].join('\n'),
    );
    expect(doc).toEqual({
      groups: [{ name: 'g', rules: [{ alert: 'A', expr: 'sum(x)\n  > 1\n', labels: { severity: 'crit "ical"' } }] }],
      list: ['one', 'two'],
    });
  });

  it('refuses what it does not read', () => {
    expect(() => parseYaml('a: [1, 2]')).toThrow(/block-style/);
    expect(() => parseYaml('a: 1\na: 2')).toThrow(/duplicate/);
    expect(() => parseYaml('a:\n\tb: 1')).toThrow(/tab/);
    expect(() => parseYaml('a: 1\n   b: 2')).toThrow(/indentation/);
  });
});
