/**
 * Static checks of docker-compose.yml (no Docker engine needed): the topology, the environment of the
 * K2 services against CONFIG_KEYS, ports against the configuration defaults, and URLs against the
 * services that exist in the file.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { CONFIG_KEYS, ConfigKey, loadConfig, parseDuration } from '../../config';
import { CLUSTER_K2_COMMON_KEYS, CLUSTER_TOPOLOGY, CLUSTER_VERSIONS } from '../../scripts/cluster';
import { WORKER_NODE_ARGS } from '../../worker/heap';

interface Service {
  image?: string;
  build?: unknown;
  command?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: Array<string | number | { target: number; published?: string | number }>;
  expose?: Array<string | number>;
  profiles?: string[];
  deploy?: { replicas?: number };
  configs?: Array<string | { source: string; target?: string }>;
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[] };
  volumes?: unknown[];
}

const COMPOSE_FILE = path.join(__dirname, '..', '..', 'docker-compose.yml');
const source = fs.readFileSync(COMPOSE_FILE, 'utf8');
const compose = YAML.parse(source, { merge: true }) as {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
  configs?: Record<string, { content?: string }>;
};
const services = compose.services;

const K2_SERVICES = ['k2-worker', 'k2-api', 'k2-codec'];
const SIMULATORS = ['abs-simulator', 'gkb-sandbox', 'eko-simulator'];
/** Compose only, not roles of the cluster (scripts/cluster.ts CLUSTER_TOPOLOGY): Prometheus and Grafana, under the monitoring profile. */
const MONITORING_SERVICES = ['prometheus', 'grafana'];
const REPO = path.join(__dirname, '..', '..');
/** The configuration key holding the port each K2-image service listens on. */
const LISTEN_PORT_KEY: Record<string, ConfigKey> = {
  'k2-api': 'K2_API_PORT',
  'k2-codec': 'K2_CODEC_PORT',
  'abs-simulator': 'ABS_SIM_PORT',
  'gkb-sandbox': 'GKB_SIM_PORT',
  'eko-simulator': 'EKO_SIM_PORT',
};
/** Secrets every K2 service needs: always from the environment, required (${VAR:?message}). */
const SECRET_KEYS = ['K2_API_PASSWORD', 'GKB_PASSWORD', 'K2_API_TOKEN', 'K2_PAYLOAD_KEYS', 'K2_CODEC_TOKEN'];
/** Secrets needed only in some mode (ABS_AUTH=basic, …): from the environment, empty when not given (${VAR:-}). */
const OPTIONAL_SECRET_KEYS = ['ABS_PASSWORD', 'ABS_TOKEN', 'EKO_PASSWORD', 'EKO_TOKEN', 'K2_API_OPS_TOKEN'];
/** A valid value for a required variable whose placeholder would not pass loadConfig. */
const REQUIRED_SAMPLES: Record<string, string> = {
  K2_PAYLOAD_KEYS: `k1:${Buffer.alloc(32, 7).toString('base64')}`,
  GKB_DICTIONARY_JSON: JSON.stringify({ fundingType: '2', creditPurpose2: '1', creditObject: '03', branchLocationKatoId: '750000000' }),
};

/** Compose interpolation as the engine would do it with an empty environment (required values become a placeholder). */
function interpolate(value: string): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}/g, (_m, name: string, op: string | undefined, arg: string) => {
    if (op === ':-' || op === '-') return arg;
    if (op === ':?' || op === '?') return REQUIRED_SAMPLES[name] ?? 'placeholder-secret';
    return '';
  });
}

function envOf(service: Service): Record<string, string> {
  const env = service.environment ?? {};
  const entries: Array<[string, string]> = Array.isArray(env)
    ? env.map((line) => {
        const i = line.indexOf('=');
        return i < 0 ? [line, ''] : [line.slice(0, i), line.slice(i + 1)];
      })
    : Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v)]);
  return Object.fromEntries(entries);
}

function containerPorts(service: Service): number[] {
  const fromPorts = (service.ports ?? []).map((p) => {
    if (typeof p === 'object') return Number(p.target);
    const parts = String(p).split('/')[0].split(':');
    return Number(parts[parts.length - 1]);
  });
  const fromExpose = (service.expose ?? []).map((p) => Number(String(p).split('/')[0]));
  return [...new Set([...fromPorts, ...fromExpose])];
}

/** Ports a service listens on inside its container. */
function listeningPorts(name: string): number[] {
  const service = services[name];
  const key = LISTEN_PORT_KEY[name];
  if (key) return [Number(envOf(service)[key] ?? CONFIG_KEYS[key].default)];
  return containerPorts(service);
}

function dependsOn(service: Service): string[] {
  const d = service.depends_on;
  if (!d) return [];
  return Array.isArray(d) ? d : Object.keys(d);
}

function commandText(service: Service): string {
  return Array.isArray(service.command) ? service.command.join(' ') : String(service.command ?? '');
}

describe('docker-compose.yml', () => {
  it('parses and declares the expected services', () => {
    expect(Object.keys(services)).toEqual(
      expect.arrayContaining(['temporal', 'postgres', 'temporal-ui', 'k2-worker', 'k2-api', 'abs-simulator', 'gkb-sandbox', 'eko-simulator']),
    );
  });

  it('gives every service an image or a build', () => {
    for (const [name, service] of Object.entries(services)) {
      expect({ name, hasImageOrBuild: Boolean(service.image || service.build) }).toEqual({ name, hasImageOrBuild: true });
    }
  });

  it('pins every third-party image to a version', () => {
    for (const [name, service] of Object.entries(services)) {
      if (service.build) continue;
      // A version tag (Prometheus tags its releases v2.53.2), never latest or a branch.
      expect({ name, image: service.image }).toEqual({ name, image: expect.stringMatching(/^[\w./-]+:v?\d[\w.-]*$/) });
    }
    expect(services.temporal.image).toMatch(/^temporalio\/(auto-setup|server):1\.\d+/);
    expect(services['temporal-ui'].image).toMatch(/^temporalio\/ui:2\.\d+/);
    expect(services.postgres.image).toMatch(/^postgres:\d+/);
  });

  it('gives PostgreSQL a volume and a healthcheck', () => {
    expect(services.postgres.volumes?.length).toBeGreaterThan(0);
    expect(JSON.stringify(services.postgres.healthcheck?.test)).toContain('pg_isready');
  });

  it('registers the K2 search attributes in a one-shot admin-tools service', () => {
    const registrar = Object.values(services).find((s) => s.image?.startsWith('temporalio/admin-tools:') && commandText(s).includes('search-attribute'));
    expect(registrar).toBeDefined();
    const script = commandText(registrar!);
    expect(script).toContain('temporal operator search-attribute create');
    for (const sa of ['K2Stage=Keyword', 'K2NeedsAttention=Bool', 'K2AttentionReason=Keyword', 'K2BatchState=Keyword']) expect(script).toContain(sa);
  });

  it('builds the K2 services and simulators from the Dockerfile and runs the right entry point', () => {
    const entry: Record<string, string> = {
      'k2-worker': [...WORKER_NODE_ARGS, 'dist/worker/main.js'].join(' '),
      'k2-api': 'dist/api/main.js',
      'k2-codec': 'dist/codec/main.js',
      'abs-simulator': 'dist/simulators/abs/main.js',
      'gkb-sandbox': 'dist/simulators/gkb/main.js',
      'eko-simulator': 'dist/simulators/eko/main.js',
    };
    for (const [name, script] of Object.entries(entry)) {
      expect({ name, build: services[name].build }).toEqual({ name, build: expect.anything() });
      expect({ name, command: commandText(services[name]) }).toEqual({ name, command: `node ${script}` });
    }
    expect(fs.existsSync(path.join(__dirname, '..', '..', 'Dockerfile'))).toBe(true);
  });

  it('puts the simulators, and only them, under the simulators profile', () => {
    for (const name of SIMULATORS) expect({ name, profiles: services[name].profiles }).toEqual({ name, profiles: ['simulators'] });
    for (const name of ['temporal', 'postgres', 'temporal-ui', ...K2_SERVICES])
      expect({ name, profiles: services[name].profiles }).toEqual({ name, profiles: undefined });
  });

  it('puts Prometheus and Grafana, and only them, under the monitoring profile', () => {
    const profiled = Object.entries(services)
      .filter(([, s]) => s.profiles?.includes('monitoring'))
      .map(([name]) => name);
    expect(profiled.sort()).toEqual([...MONITORING_SERVICES].sort());
    for (const name of MONITORING_SERVICES) expect({ name, profiles: services[name].profiles }).toEqual({ name, profiles: ['monitoring'] });
  });

  it('sets only CONFIG_KEYS variables on the K2 services and simulators', () => {
    for (const name of [...K2_SERVICES, ...SIMULATORS]) {
      const unknown = Object.keys(envOf(services[name])).filter((k) => !(k in CONFIG_KEYS));
      expect({ name, unknown }).toEqual({ name, unknown: [] });
    }
  });

  it('keeps secrets out of the file (required ${VAR:?message} interpolation)', () => {
    for (const [name, service] of Object.entries(services)) {
      const env = envOf(service);
      for (const key of [...SECRET_KEYS, 'POSTGRES_PASSWORD', 'POSTGRES_PWD']) {
        if (env[key] === undefined) continue;
        expect({ name, key, value: env[key] }).toEqual({ name, key, value: expect.stringMatching(/^\$\{[A-Z0-9_]+:\?[^}]+\}$/) });
      }
    }
    expect(envOf(services['k2-api']).K2_API_PASSWORD).toMatch(/^\$\{K2_API_PASSWORD:\?/);
    expect(envOf(services['k2-worker']).GKB_PASSWORD).toMatch(/^\$\{GKB_PASSWORD:\?/);
    for (const name of K2_SERVICES) {
      for (const key of ['K2_PAYLOAD_KEYS', 'K2_CODEC_TOKEN', 'GKB_PASSWORD'])
        expect({ name, key, value: envOf(services[name])[key] }).toEqual({ name, key, value: expect.stringMatching(new RegExp(`^\\$\\{${key}:\\?`)) });
    }
  });

  it('takes the secrets needed only in some mode from the environment, empty by default (${VAR:-})', () => {
    for (const [name, service] of Object.entries(services)) {
      const env = envOf(service);
      for (const key of OPTIONAL_SECRET_KEYS) {
        if (env[key] === undefined) continue;
        expect({ name, key, value: env[key] }).toEqual({ name, key, value: `\${${key}:-}` });
      }
    }
  });

  it('runs the K2 services outside the demo and the simulators in it', () => {
    for (const name of K2_SERVICES) expect({ name, demo: envOf(services[name]).K2_DEMO }).toEqual({ name, demo: 'false' });
    for (const name of SIMULATORS) expect({ name, demo: envOf(services[name]).K2_DEMO }).toEqual({ name, demo: 'true' });
  });

  it('gives every K2 service and simulator an environment loadConfig accepts (secrets given)', () => {
    for (const name of [...K2_SERVICES, ...SIMULATORS]) {
      const env = Object.fromEntries(Object.entries(envOf(services[name])).map(([k, v]) => [k, interpolate(v)]));
      let problems: string[] = [];
      try {
        loadConfig(env);
      } catch (err) {
        problems = (err as { problems?: string[] }).problems ?? [String(err)];
      }
      expect({ name, problems }).toEqual({ name, problems: [] });
    }
  });

  it('sets the connection settings of issue 13 on the K2 services', () => {
    const tempTls = ['TEMPORAL_TLS', 'TEMPORAL_TLS_CA_FILE', 'TEMPORAL_TLS_CERT_FILE', 'TEMPORAL_TLS_KEY_FILE', 'TEMPORAL_TLS_SERVER_NAME'];
    for (const name of K2_SERVICES) for (const key of tempTls) expect({ name, key, set: key in envOf(services[name]) }).toEqual({ name, key, set: true });
    const worker = envOf(services['k2-worker']);
    const outbound = ['ABS', 'EKO'].flatMap((p) => [`${p}_AUTH`, `${p}_USER`, `${p}_PASSWORD`, `${p}_TOKEN`]);
    const files = ['ABS', 'EKO', 'GKB'].flatMap((p) => [`${p}_TLS_CA_FILE`, `${p}_TLS_CERT_FILE`, `${p}_TLS_KEY_FILE`]);
    for (const key of [...outbound, ...files]) expect({ key, set: key in worker }).toEqual({ key, set: true });
    expect(interpolate(worker.ABS_AUTH)).toBe('none');
    const api = envOf(services['k2-api']);
    for (const key of ['K2_API_MAX_CONCURRENT', 'K2_API_RATE_PER_CLIENT', 'K2_API_OPS_AUTH', 'K2_API_OPS_TOKEN'])
      expect({ key, set: key in api }).toEqual({ key, set: true });
    expect(interpolate(api.K2_API_OPS_AUTH)).toBe('loopback');
  });

  it('runs the codec server and points the Web UI at it, from the origin the UI is published under', () => {
    const codec = envOf(services['k2-codec']);
    expect(codec.K2_CODEC_HOST).toBe('0.0.0.0');
    const published = (name: string, target: number) => {
      const spec = (services[name].ports ?? []).map(String).find((p) => p.endsWith(`:${target}`));
      const parts = (spec ?? '').split(':');
      return { host: parts.length === 3 ? parts[0] : '0.0.0.0', port: Number(parts[parts.length - 2]) };
    };
    const codecPort = Number(codec.K2_CODEC_PORT);
    expect(published('k2-codec', codecPort)).toEqual({ host: '127.0.0.1', port: codecPort });
    const ui = envOf(services['temporal-ui']);
    // The browser calls the endpoint: it is the codec server's published address, not its service name.
    const endpoint = new URL(interpolate(ui.TEMPORAL_CODEC_ENDPOINT));
    expect({ host: endpoint.hostname, port: Number(endpoint.port) }).toEqual(published('k2-codec', codecPort));
    expect(ui.TEMPORAL_CODEC_INCLUDE_CREDENTIALS).toBe('true');
    const uiPublished = published('temporal-ui', 8080);
    expect(interpolate(codec.K2_CODEC_CORS_ORIGINS).split(',')).toContain(`http://${uiPublished.host}:${uiPublished.port}`);
  });

  it('runs K2 on PostgreSQL and the API on every interface', () => {
    for (const name of K2_SERVICES) {
      const env = envOf(services[name]);
      expect({ name, client: env.K2_DB_CLIENT }).toEqual({ name, client: 'pg' });
      expect(interpolate(env.K2_DB_URL)).toMatch(/^postgres:\/\/[^@]+@postgres:5432\/k2$/);
      expect(env.TEMPORAL_ADDRESS).toBe('temporal:7233');
    }
    expect(envOf(services['k2-api']).K2_API_HOST).toBe('0.0.0.0');
  });

  it('publishes k2-api and the simulators on the ports of the configuration defaults', () => {
    for (const name of Object.keys(LISTEN_PORT_KEY)) {
      const key = LISTEN_PORT_KEY[name];
      const expected = Number(CONFIG_KEYS[key].default);
      const env = envOf(services[name]);
      if (env[key] !== undefined) expect({ name, key, value: Number(env[key]) }).toEqual({ name, key, value: expected });
      const ports = containerPorts(services[name]);
      expect({ name, ports }).toEqual({ name, ports: [expected] });
    }
    expect(containerPorts(services['k2-api'])).toEqual([8080]);
    expect(containerPorts(services['abs-simulator'])).toEqual([8091]);
    expect(containerPorts(services['gkb-sandbox'])).toEqual([8092]);
    expect(containerPorts(services['eko-simulator'])).toEqual([8093]);
  });

  it('checks the API health on /health at its port', () => {
    const test = JSON.stringify(services['k2-api'].healthcheck?.test ?? '');
    expect(test).toContain(`:${CONFIG_KEYS.K2_API_PORT.default}/health`);
  });

  it('checks the worker health on /health at the port of K2_WORKER_HEALTH, which it exposes', () => {
    const worker = services['k2-worker'];
    const port = Number(interpolate(envOf(worker).K2_WORKER_HEALTH).split(':')[1]);
    expect(JSON.stringify(worker.healthcheck?.test ?? '')).toContain(`:${port}/health`);
    expect(containerPorts(worker)).toContain(port);
  });

  it('gives the worker and the API longer to stop than their own grace times (running work finishes before the kill)', () => {
    for (const [name, key] of [
      ['k2-worker', 'K2_WORKER_SHUTDOWN_GRACE'],
      ['k2-api', 'K2_API_SHUTDOWN_GRACE'],
    ] as const) {
      const service = services[name] as Service & { stop_grace_period?: string };
      const graceMs = parseDuration(interpolate(envOf(service)[key] ?? CONFIG_KEYS[key].default)) ?? Infinity;
      const stopMs = parseDuration(service.stop_grace_period ?? '10s') ?? 0;
      expect({ name, longerThanGrace: stopMs > graceMs }).toEqual({ name, longerThanGrace: true });
    }
  });

  it('points every URL and address at a service of this file, on the port that service listens on', () => {
    const checked: string[] = [];
    for (const name of [...K2_SERVICES, ...SIMULATORS]) {
      for (const [key, raw] of Object.entries(envOf(services[name]))) {
        // Browser origins of the Web UI, not addresses of services.
        if (key === 'K2_CODEC_CORS_ORIGINS') continue;
        const value = interpolate(raw);
        let host: string;
        let port: number;
        if (key === 'TEMPORAL_ADDRESS') {
          [host, port] = [value.split(':')[0], Number(value.split(':')[1])];
        } else if (/^(https?|postgres(ql)?):\/\//.test(value)) {
          const url = new URL(value);
          host = url.hostname;
          port = Number(url.port || { 'http:': 80, 'https:': 443 }[url.protocol] || 5432);
        } else continue;
        checked.push(`${name}.${key}`);
        expect({ where: `${name}.${key}`, hostIsService: host in services }).toEqual({ where: `${name}.${key}`, hostIsService: true });
        expect({ where: `${name}.${key}`, port, listening: listeningPorts(host) }).toEqual({
          where: `${name}.${key}`,
          port,
          listening: expect.arrayContaining([port]),
        });
      }
    }
    expect(checked).toEqual(
      expect.arrayContaining([
        'k2-worker.TEMPORAL_ADDRESS',
        'k2-worker.K2_DB_URL',
        'k2-worker.ABS_GET_CLI_URL',
        'k2-worker.ABS_GET_ACC_URL',
        'k2-worker.ABS_GET_ACC_STMT_DT_URL',
        'k2-worker.ABS_GET_PDF_URL',
        'k2-worker.EKO_DEMAND_URL',
        'k2-worker.GKB_URL',
        'k2-api.TEMPORAL_ADDRESS',
        'k2-api.K2_DB_URL',
      ]),
    );
  });

  it('uses paths of the simulators that the K2 defaults use', () => {
    const worker = envOf(services['k2-worker']);
    for (const key of ['ABS_GET_CLI_URL', 'ABS_GET_ACC_URL', 'ABS_GET_ACC_STMT_DT_URL', 'ABS_GET_PDF_URL', 'EKO_DEMAND_URL', 'GKB_URL'] as const) {
      expect({ key, path: new URL(interpolate(worker[key])).pathname }).toEqual({ key, path: new URL(CONFIG_KEYS[key].default).pathname });
    }
  });

  it('depends only on services that exist', () => {
    for (const [name, service] of Object.entries(services)) {
      const missing = dependsOn(service).filter((d) => !(d in services));
      expect({ name, missing }).toEqual({ name, missing: [] });
    }
    expect(dependsOn(services['k2-worker'])).toEqual(expect.arrayContaining(['postgres', 'temporal']));
    expect(dependsOn(services['k2-api'])).toContain('postgres');
  });

  it('does not make an always-on service depend on a profile-only one', () => {
    for (const [name, service] of Object.entries(services)) {
      if (service.profiles) continue;
      const onProfiled = dependsOn(service).filter((d) => services[d]?.profiles);
      expect({ name, onProfiled }).toEqual({ name, onProfiled: [] });
    }
  });

  it('declares every named volume it mounts', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const v of service.volumes ?? []) {
        const source = typeof v === 'string' ? v.split(':')[0] : (v as { source?: string }).source;
        if (!source || source.startsWith('.') || source.startsWith('/')) continue;
        expect({ name, source, declared: source in (compose.volumes ?? {}) }).toEqual({ name, source, declared: true });
      }
    }
  });
});

/** Bind mounts of a service: repository path (relative to the compose file) → path in the container. */
function bindMounts(service: Service): Record<string, string> {
  const binds = (service.volumes ?? []).filter((v): v is string => typeof v === 'string' && v.startsWith('./')).map((v) => v.split(':'));
  return Object.fromEntries(binds.map(([from, to]) => [from, to]));
}

describe('docker-compose.yml monitoring (profile monitoring)', () => {
  const prometheus = services.prometheus;
  const grafana = services.grafana;
  const scrape = YAML.parse(fs.readFileSync(path.join(REPO, 'monitoring/prometheus/prometheus.yml'), 'utf8')) as {
    rule_files: string[];
    scrape_configs: Array<{
      job_name: string;
      metrics_path?: string;
      authorization?: { type: string; credentials_file: string };
      dns_sd_configs: Array<{ names: string[]; port: number }>;
    }>;
  };

  it('mounts the scrape config and the alert rules from the repository beside each other, and the ops token beside them', () => {
    const mounts = bindMounts(prometheus);
    expect(mounts).toEqual(
      expect.objectContaining({
        './monitoring/prometheus/prometheus.yml': '/etc/prometheus/prometheus.yml',
        './monitoring/prometheus/alerts.yml': '/etc/prometheus/alerts.yml',
      }),
    );
    for (const file of Object.keys(mounts)) expect({ file, exists: fs.existsSync(path.join(REPO, file)) }).toEqual({ file, exists: true });
    expect(commandText(prometheus)).toContain('--config.file=/etc/prometheus/prometheus.yml');
    // rule files and the token file are relative to the scrape config's folder
    for (const rules of scrape.rule_files) expect(Object.values(mounts)).toContain(path.posix.join('/etc/prometheus', rules));
    const api = scrape.scrape_configs.find((c) => c.job_name === 'k2-api')!;
    const token = (prometheus.configs ?? [])
      .map((c) => (typeof c === 'string' ? { source: c, target: undefined } : c))
      .find((c) => c.target === path.posix.join('/etc/prometheus', api.authorization!.credentials_file));
    expect(token).toBeDefined();
    expect(compose.configs?.[token!.source]?.content).toBe('${K2_API_OPS_TOKEN:-}');
  });

  it('scrapes every replica of the API (its /metrics, with the ops token) and of the worker (K2_WORKER_METRICS), on the ports they listen on', () => {
    const jobs = Object.fromEntries(scrape.scrape_configs.map((c) => [c.job_name, c]));
    expect(Object.keys(jobs).sort()).toEqual(['k2-api', 'k2-worker']);
    expect(jobs['k2-api'].authorization?.type).toBe('Bearer');
    const workerMetricsPort = Number(interpolate(envOf(services['k2-worker']).K2_WORKER_METRICS).split(':')[1]);
    const expected: Record<string, { service: string; port: number }> = {
      'k2-api': { service: 'k2-api', port: listeningPorts('k2-api')[0] },
      'k2-worker': { service: 'k2-worker', port: workerMetricsPort },
    };
    for (const [job, { service, port }] of Object.entries(expected)) {
      const [sd] = jobs[job].dns_sd_configs;
      expect({ job, names: sd.names, port: sd.port }).toEqual({ job, names: [service], port });
      expect(containerPorts(services[service])).toContain(port);
      expect(jobs[job].metrics_path ?? '/metrics').toBe('/metrics');
    }
  });

  it('gives Grafana the Prometheus data source and the K2 dashboard from the repository, read-only', () => {
    const mounts = bindMounts(grafana);
    for (const file of Object.keys(mounts)) expect({ file, exists: fs.existsSync(path.join(REPO, file)) }).toEqual({ file, exists: true });
    const datasources = YAML.parse(fs.readFileSync(path.join(REPO, 'monitoring/grafana/provisioning/datasources/prometheus.yml'), 'utf8')) as {
      datasources: Array<{ uid: string; url: string }>;
    };
    const [source] = datasources.datasources;
    const url = new URL(source.url);
    expect(url.hostname).toBe('prometheus');
    expect(containerPorts(prometheus)).toContain(Number(url.port));
    const provider = (
      YAML.parse(fs.readFileSync(path.join(REPO, 'monitoring/grafana/provisioning/dashboards/k2.yml'), 'utf8')) as {
        providers: Array<{ options: { path: string } }>;
      }
    ).providers[0];
    expect(mounts['./monitoring/grafana/k2.json']).toBe(path.posix.join(provider.options.path, 'k2.json'));
    const dashboard = JSON.parse(fs.readFileSync(path.join(REPO, 'monitoring/grafana/k2.json'), 'utf8')) as {
      panels: Array<{ type: string; datasource?: { uid: string } }>;
    };
    for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) expect(panel.datasource?.uid).toBe(source.uid);
    expect(envOf(grafana).GF_AUTH_ANONYMOUS_ORG_ROLE).toBe('Viewer');
    expect(envOf(grafana).GF_AUTH_DISABLE_LOGIN_FORM).toBe('true');
  });

  it('publishes Prometheus and Grafana on loopback only', () => {
    for (const name of MONITORING_SERVICES)
      for (const p of services[name].ports ?? []) expect({ name, port: String(p) }).toEqual({ name, port: expect.stringMatching(/^127\.0\.0\.1:/) });
  });
});

/** The compose service of each role of the cluster (scripts/cluster.ts CLUSTER_TOPOLOGY). */
const SERVICE_OF_ROLE: Record<string, string> = {
  postgres: 'postgres',
  'temporal-schema': 'temporal-schema',
  'temporal-server': 'temporal',
  'temporal-namespace': 'temporal-namespace',
  'temporal-ui': 'temporal-ui',
  codec: 'k2-codec',
  'abs-simulator': 'abs-simulator',
  'gkb-sandbox': 'gkb-sandbox',
  'eko-simulator': 'eko-simulator',
  worker: 'k2-worker',
  api: 'k2-api',
  'load-balancer': 'k2-lb',
};

const replicas = (service: Service) => service.deploy?.replicas ?? 1;
const imageVersion = (service: Service) => service.image?.split(':')[1] ?? '';

describe('docker-compose.yml runs what `npm run up -- --cluster` runs', () => {
  it('has one service per role of the cluster and no other (besides the compose-only monitoring services)', () => {
    expect(Object.keys(SERVICE_OF_ROLE).sort()).toEqual(CLUSTER_TOPOLOGY.map((r) => r.role).sort());
    expect(Object.keys(services).sort()).toEqual([...Object.values(SERVICE_OF_ROLE), ...MONITORING_SERVICES].sort());
  });

  it('runs as many processes of each role as the cluster (two workers, two API replicas)', () => {
    for (const { role, count } of CLUSTER_TOPOLOGY) expect({ role, count: replicas(services[SERVICE_OF_ROLE[role]]) }).toEqual({ role, count });
    expect(replicas(services['k2-worker'])).toBe(2);
    expect(replicas(services['k2-api'])).toBe(2);
  });

  it('runs the same program for each K2 role', () => {
    for (const { role, command, nodeArgs = [] } of CLUSTER_TOPOLOGY.filter((r) => r.command.startsWith('dist/'))) {
      expect({ role, command: commandText(services[SERVICE_OF_ROLE[role]]) }).toEqual({ role, command: ['node', ...nodeArgs, command].join(' ') });
    }
  });

  it('sets, for each role, the K2 configuration keys the cluster gives its processes', () => {
    for (const { role, k2, keys } of CLUSTER_TOPOLOGY) {
      const expected = [...(k2 ? CLUSTER_K2_COMMON_KEYS : []), ...keys];
      for (const key of expected) expect({ role, key, known: key in CONFIG_KEYS }).toEqual({ role, key, known: true });
      const env = envOf(services[SERVICE_OF_ROLE[role]]);
      const missing = expected.filter((key) => !(key in env));
      expect({ role, missing }).toEqual({ role, missing: [] });
    }
  });

  it('keeps documents in PostgreSQL, which every worker reaches', () => {
    const k2Roles = CLUSTER_TOPOLOGY.filter((r) => r.k2).map((r) => r.role);
    expect(k2Roles.sort()).toEqual(['api', 'codec', 'worker']);
    for (const role of k2Roles) {
      const env = envOf(services[SERVICE_OF_ROLE[role]]);
      expect({ role, store: env.K2_DOCUMENT_STORE, client: env.K2_DB_CLIENT }).toEqual({ role, store: 'pg', client: 'pg' });
    }
  });

  it('runs the Temporal server and UI of the versions the cluster builds, the schema set up by the SQL tool', () => {
    expect(services.temporal.image).toBe(`temporalio/server:${CLUSTER_VERSIONS.temporalServer.replace(/^v/, '')}`);
    expect(services['temporal-ui'].image).toBe(`temporalio/ui:${CLUSTER_VERSIONS.uiServer.replace(/^v/, '')}`);
    const schema = services['temporal-schema'];
    expect(imageVersion(schema).split('-')[0]).toBe(imageVersion(services.temporal));
    expect(commandText(schema)).toMatch(/temporal-sql-tool .*setup-schema -v 0\.0/);
    expect(commandText(schema)).toMatch(/temporal-sql-tool .*update-schema/);
    for (const db of ['temporal', 'temporal_visibility']) expect(commandText(schema)).toContain(db);
    expect(dependsOn(services.temporal)).toContain('temporal-schema');
  });

  it('puts nginx in front of the API replicas: the only published API port, every replica its upstream', () => {
    const lb = services['k2-lb'];
    expect(lb.image).toMatch(/^nginx:\d/);
    expect(dependsOn(lb)).toContain('k2-api');
    const apiPort = Number(envOf(services['k2-api']).K2_API_PORT);
    expect((services['k2-api'].ports ?? []).length).toBe(0);
    expect((lb.ports ?? []).map(String)).toContain(`${CONFIG_KEYS.K2_API_PORT.default}:${apiPort}`);
    const config = (lb.configs ?? [])
      .map((c) => (typeof c === 'string' ? { source: c, target: undefined } : c))
      .find((c) => c.target === '/etc/nginx/nginx.conf');
    const content = compose.configs?.[config?.source ?? '']?.content ?? '';
    expect(content).toContain(`server k2-api:${apiPort}`);
    expect(content).toContain(`listen ${apiPort};`);
    expect(content).toContain('proxy_pass http://k2_api;');
    expect(content).toContain('proxy_next_upstream error timeout http_502 http_503 non_idempotent;');
    // EKO answers statuses through the load balancer, as in the cluster.
    expect(new URL(interpolate(envOf(services['eko-simulator']).EKO_SIM_K2_URL)).hostname).toBe('k2-lb');
  });
});
