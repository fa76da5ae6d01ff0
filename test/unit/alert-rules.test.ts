/**
 * The alert rules, the scrape config and the dashboard (monitoring/): promtool checks the rules and
 * the config and runs the rules' unit tests (alerts.test.yml: input series, expected alerts with
 * their annotations). promtool comes from scripts/ensure-promtool.sh (Debian's prometheus package;
 * as .ci/run calls it, and here too when it is missing); without it those tests are skipped and say
 * why. The static checks run always: every K2 metric a rule or a panel reads is one K2 declares, and
 * every alert tells the on-call what to run.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';

jest.setTimeout(20 * 60_000);

const REPO = path.resolve(__dirname, '..', '..');
const PROMETHEUS_DIR = path.join(REPO, 'monitoring', 'prometheus');

function findPromtool(): string | undefined {
  const found = spawnSync('bash', ['-c', 'command -v promtool || { [ -x /usr/bin/promtool ] && echo /usr/bin/promtool; }'], { encoding: 'utf8' });
  return found.stdout?.trim() || undefined;
}

/** promtool, installed by the project's script when missing (it never fails; it prints PROMTOOL=… when promtool is there). */
function ensurePromtool(): string | undefined {
  const present = findPromtool();
  if (present) return present;
  const run = spawnSync('bash', [path.join(REPO, 'scripts', 'ensure-promtool.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 20 * 60_000,
  });
  return /^PROMTOOL=(.+)$/m.exec(run.stdout ?? '')?.[1] ?? findPromtool();
}

const PROMTOOL = ensurePromtool();
const SKIP_REASON = PROMTOOL ? undefined : 'promtool is missing and scripts/ensure-promtool.sh could not install it (it needs root on Debian)';
if (SKIP_REASON) console.warn(`alert-rules.test.ts: the promtool tests are skipped: ${SKIP_REASON}`);
const withPromtool = SKIP_REASON ? describe.skip : describe;

function promtool(args: string[], cwd: string): { status: number | null; output: string } {
  const run = spawnSync(PROMTOOL!, args, { cwd, encoding: 'utf8', timeout: 120_000 });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

withPromtool('promtool', () => {
  it('checks the alert rules', () => {
    const { status, output } = promtool(['check', 'rules', 'alerts.yml'], PROMETHEUS_DIR);
    expect({ status, output }).toEqual({ status: 0, output: expect.stringContaining('SUCCESS') });
  });

  it("passes the rules' unit tests (alerts.test.yml)", () => {
    const { status, output } = promtool(['test', 'rules', 'alerts.test.yml'], PROMETHEUS_DIR);
    expect({ status, output }).toEqual({ status: 0, output: expect.stringContaining('SUCCESS') });
  });

  it('checks the compose scrape config with its rules (the ops token file as compose mounts it beside them)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-prometheus-'));
    try {
      for (const file of ['prometheus.yml', 'alerts.yml']) fs.copyFileSync(path.join(PROMETHEUS_DIR, file), path.join(dir, file));
      fs.writeFileSync(path.join(dir, 'k2-api-ops-token'), 'a-token-of-sixteen-characters');
      const { status, output } = promtool(['check', 'config', 'prometheus.yml'], dir);
      expect({ status, output }).toEqual({ status: 0, output: expect.stringContaining('valid prometheus config') });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---- static checks ------------------------------------------------------------------------------

/** Every metric name K2's code declares (registry.counter/gauge/histogram and the call metrics), with a histogram's series. */
function declaredMetrics(): Set<string> {
  const names = new Set<string>();
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (entry.name.endsWith('.ts'))
        for (const m of fs.readFileSync(file, 'utf8').matchAll(/\.(counter|gauge|histogram)\(\s*'(k2_[a-z0-9_]+)'/g)) names.add(m[2]);
    }
  };
  for (const dir of ['api', 'worker', 'observability']) walk(path.join(REPO, dir));
  // The call histogram is declared through its constant.
  const calls = fs.readFileSync(path.join(REPO, 'observability', 'call-metrics.ts'), 'utf8');
  const histogram = /CALL_DURATION_METRIC = '(k2_[a-z0-9_]+)'/.exec(calls)?.[1];
  if (histogram) names.add(histogram);
  for (const name of [...names]) for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
  return names;
}

const usedMetrics = (expr: string): string[] => [...expr.matchAll(/\b(k2_[a-z0-9_]+)/g)].map((m) => m[1]);

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  annotations?: { summary?: string; description?: string };
}
const rules = (YAML.parse(fs.readFileSync(path.join(PROMETHEUS_DIR, 'alerts.yml'), 'utf8')) as { groups: Array<{ rules: Rule[] }> }).groups.flatMap(
  (g) => g.rules,
);
const dashboard = JSON.parse(fs.readFileSync(path.join(REPO, 'monitoring', 'grafana', 'k2.json'), 'utf8')) as {
  panels: Array<{ type: string; title: string; targets?: Array<{ expr: string }> }>;
};

describe("alert rules and dashboard against K2's metrics", () => {
  const declared = declaredMetrics();

  it('finds the metrics K2 declares', () => {
    expect([...declared]).toEqual(
      expect.arrayContaining(['k2_cases', 'k2_calls_total', 'k2_call_duration_seconds_bucket', 'k2_outbox_dead_letters', 'k2_outbox_pending_oldest_seconds']),
    );
  });

  it('reads in every rule only metrics K2 declares (or its own recorded series)', () => {
    const recorded = new Set(rules.map((r) => r.record).filter(Boolean));
    for (const rule of rules) {
      const unknown = usedMetrics(rule.expr).filter((m) => !declared.has(m));
      expect({ rule: rule.alert ?? rule.record, unknown }).toEqual({ rule: rule.alert ?? rule.record, unknown: [] });
      for (const r of rule.expr.match(/\bk2:[a-z0-9_:]+/g) ?? [])
        expect({ rule: rule.alert ?? rule.record, recorded: r, known: recorded.has(r) }).toEqual({ rule: rule.alert ?? rule.record, recorded: r, known: true });
    }
  });

  it('has the alerts of issue 16, each telling the on-call what it means and what to run', () => {
    const alerts = rules.filter((r) => r.alert);
    expect(alerts.map((a) => a.alert)).toEqual(
      expect.arrayContaining(['K2OutboxItemWaiting', 'K2GkbPackageBeyondHorizon', 'K2AbsErrorRate', 'K2EkoErrorRate', 'K2CasesEnteringAttentionFast']),
    );
    for (const a of alerts) {
      expect({ alert: a.alert, summary: Boolean(a.annotations?.summary) }).toEqual({ alert: a.alert, summary: true });
      // a command in backticks: the operator CLI, or what to check
      expect({ alert: a.alert, description: a.annotations?.description }).toEqual({ alert: a.alert, description: expect.stringMatching(/`[^`]+`/) });
    }
  });

  it('reads in every dashboard panel only metrics K2 declares or recorded series of the rules', () => {
    const recorded = new Set(rules.map((r) => r.record).filter(Boolean));
    const panels = dashboard.panels.filter((p) => p.type !== 'row');
    expect(panels.length).toBeGreaterThanOrEqual(12);
    for (const panel of panels) {
      expect({ panel: panel.title, targets: (panel.targets ?? []).length > 0 }).toEqual({ panel: panel.title, targets: true });
      for (const { expr } of panel.targets ?? []) {
        const unknown = [...usedMetrics(expr).filter((m) => !declared.has(m)), ...(expr.match(/\bk2:[a-z0-9_:]+/g) ?? []).filter((r) => !recorded.has(r))];
        expect({ panel: panel.title, unknown }).toEqual({ panel: panel.title, unknown: [] });
      }
    }
  });
});
