/**
 * The cluster's configuration templates (cluster/*.yaml, cluster/nginx.conf) filled in by
 * scripts/cluster.ts: every placeholder gets a value, the ports land where the processes listen, and
 * nothing but loopback is bound. Quick: no binaries, no processes.
 */
import { parse } from 'yaml';
import { DEFAULT_CLUSTER_PORTS, fillTemplate, freeClusterPorts, renderNginxConfig, renderServerConfig, renderUiConfig } from '../../scripts/cluster';

test('a placeholder without a value is an error, naming it; other dollar signs stay', () => {
  expect(fillTemplate('a ${X} b $host ${...}', { X: 1 })).toBe('a 1 b $host ${...}');
  expect(() => fillTemplate('port ${PORTT}', { PORT: 1 })).toThrow('${PORTT}');
});

test("the Temporal server config puts every service on its own loopback port and both stores on the cluster's PostgreSQL", () => {
  const ports = DEFAULT_CLUSTER_PORTS;
  const config = parse(renderServerConfig(ports, 'pw', '/tmp/dc.yaml'));
  expect(config.services.frontend.rpc).toEqual({
    grpcPort: ports.temporal,
    membershipPort: ports.internal.frontendMembership,
    httpPort: ports.temporalHttp,
    bindOnLocalHost: true,
  });
  expect(config.services.history.rpc.grpcPort).toBe(ports.internal.history);
  expect(config.services.matching.rpc.grpcPort).toBe(ports.internal.matching);
  expect(config.services.worker.rpc.grpcPort).toBe(ports.internal.worker);
  for (const store of [config.persistence.defaultStore, config.persistence.visibilityStore]) {
    expect(config.persistence.datastores[store].sql).toMatchObject({
      pluginName: 'postgres12',
      connectAddr: `127.0.0.1:${ports.postgres}`,
      user: 'k2cluster',
      password: 'pw',
    });
  }
  expect(config.persistence.datastores[config.persistence.visibilityStore].sql.databaseName).toBe('temporal_visibility');
  expect(config.clusterMetadata.clusterInformation.active.rpcAddress).toBe(`127.0.0.1:${ports.temporal}`);
  expect(config.global.metrics.prometheus.listenAddress).toBe(`127.0.0.1:${ports.temporalMetrics}`);
  expect(config.dynamicConfigClient.filepath).toBe('/tmp/dc.yaml');
});

test('the UI server talks to the frontend and decodes through the codec server, on loopback', async () => {
  const ports = await freeClusterPorts();
  const ui = parse(renderUiConfig(ports));
  expect(ui).toMatchObject({
    temporalGrpcAddress: `127.0.0.1:${ports.temporal}`,
    host: '127.0.0.1',
    port: ports.ui,
    codec: { endpoint: `http://127.0.0.1:${ports.codec}`, includeCredentials: true },
  });
});

test('nginx listens on the API port on loopback and balances over every replica', () => {
  const ports = { ...DEFAULT_CLUSTER_PORTS, apiReplicas: [18081, 18082, 18083] };
  const conf = renderNginxConfig('/tmp/run', ports);
  expect(conf).toContain(`listen 127.0.0.1:${ports.api};`);
  expect(conf.match(/^\s*server 127\.0\.0\.1:\d+ /gm)?.map((l) => Number(l.trim().split(/[: ]/)[2]))).toEqual([18081, 18082, 18083]);
  expect(conf).not.toMatch(/\$\{[A-Z_]+\}/);
});
