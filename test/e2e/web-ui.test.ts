/**
 * The operator's view in a real browser, on both topologies (scripts/topology.ts): the dev server's
 * Web UI, and the cluster's UI server in front of the Temporal server on PostgreSQL. The system runs
 * a few demo loans; Debian's Chromium, driven by playwright-core, signs in at the codec server, filters
 * the cases by K2Stage, opens one and sees its loan decoded (contract number, borrower's IIN and
 * name). On the dev server the operator turns on the Web UI's codec setting; the cluster's UI server
 * has the codec endpoint in its configuration (cluster/ui-server.yaml). The same history fetched
 * without the codec holds neither the IIN nor the name. The screenshots are kept in artifacts/
 * (git-ignored). Needs dist/ (scripts/test.sh builds it first).
 *
 * The browser comes from scripts/ensure-chromium.sh (Debian's package, installed when missing); the
 * test is skipped only when that script reports that it cannot install it here; the cluster's only
 * when its binaries are missing (scripts/install-cluster-tools.sh).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { caseWorkflowId } from '../../domain/case';
import { generateLoans } from '../../domain/generate';
import { repoRoot, temporalCliPath } from '../../scripts/system';
import { startTopology, topologyUnavailable, TOPOLOGY_KINDS, type RunningTopology, type TopologyKind } from '../../scripts/topology';
import { feedDemoLoans } from '../../simulators/eko/demo-feeder';
import { DEMO_SECRETS } from '../../config';

jest.setTimeout(900_000);

const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
export const screenshotOf = (kind: TopologyKind) => path.join(repoRoot(), 'artifacts', `web-ui-case-${kind}.png`);

/** Runs scripts/ensure-chromium.sh (installs Debian's chromium when missing) and reads its answer line. */
function ensureChromium(): { path: string } | { unavailable: string } {
  const run = spawnSync('bash', [path.join(repoRoot(), 'scripts', 'ensure-chromium.sh')], {
    encoding: 'utf8',
    timeout: 30 * 60_000,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const found = /^K2_CHROMIUM=(.+)$/m.exec(run.stdout ?? '');
  if (found) return { path: found[1].trim() };
  const unavailable = /^K2_CHROMIUM_UNAVAILABLE=(.+)$/m.exec(run.stdout ?? '');
  if (unavailable) return { unavailable: unavailable[1].trim() };
  // Neither answer: the script itself broke. That fails the test instead of skipping it.
  throw new Error(`scripts/ensure-chromium.sh gave no answer (exit ${run.status}, ${run.error?.message ?? 'no error'})`);
}

const browser = ensureChromium();
if ('unavailable' in browser) console.warn(`web-ui.test: skipped, no browser: ${browser.unavailable}`);
const runnable = (kind: TopologyKind) => {
  const why = 'unavailable' in browser ? browser.unavailable : topologyUnavailable(kind);
  if (why) console.warn(`web-ui.test (${kind}): skipped: ${why}`);
  return why ? test.skip : test;
};

const SEED = 1313;
const COUNT = 3;
const STAGE = 'demand-issued';

let dataDir = '';
let system: RunningTopology | undefined;
let connection: Connection | undefined;
let context: BrowserContext | undefined;
let profileDir = '';

afterEach(async () => {
  await context?.close().catch(() => undefined);
  await connection?.close();
  await system?.stop();
  for (const dir of [dataDir, profileDir]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
  context = connection = system = undefined;
  dataDir = profileDir = '';
});

/** Visibility's answer to a list query, until `count` cases are there. */
async function waitForCases(client: Client, query: string, count: number, timeoutMs = 180_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let ids: string[] = [];
  while (Date.now() < deadline) {
    ids = [];
    for await (const wf of client.workflow.list({ query })) ids.push(wf.workflowId);
    if (ids.length >= count) return ids;
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error(`only ${ids.length} of ${count} cases match ${query} in time`);
}

/** The start event's input as text, out of `temporal workflow show --output json` (payload data is base64 there); '' when there is none. */
function startInput(showJson: string): string {
  try {
    const events = (
      JSON.parse(showJson) as { events: Array<{ workflowExecutionStartedEventAttributes?: { input?: { payloads?: Array<{ data?: string }> } } }> }
    ).events;
    const data = events[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data ?? '';
    return Buffer.from(data, 'base64').toString('utf8');
  } catch {
    return '';
  }
}

/** A process's log once `ready` says so (its lines reach the file a moment after the process writes them), or as it is after 15 s. */
async function logWhen(file: string, ready: (log: string) => boolean): Promise<string> {
  const deadline = Date.now() + 15_000;
  let log = '';
  while (Date.now() < deadline) {
    log = fs.readFileSync(file, 'utf8');
    if (ready(log)) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  return log;
}

/** The operator's one-time setting in the Web UI: this browser's codec endpoint, sending the sign-in cookie along. */
async function useCodecServerInBrowser(page: Page, endpoint: string): Promise<void> {
  await page.locator('[data-testid^="data-encoder-status"]').first().click();
  const dialog = page.locator('#data-encoder-settings');
  await dialog.locator('#use-local-endpoint-radio').check({ force: true });
  await dialog.locator('#data-encoder-endpoint-input').fill(endpoint);
  await dialog.locator('[data-testid="data-encoder-include-credentials"]').check({ force: true });
  await dialog.getByRole('button', { name: 'Apply' }).click();
}

describe.each(TOPOLOGY_KINDS)('on the %s topology', (kind) => {
  runnable(kind)("an operator sees a case's loan decoded in the Web UI; without the codec its history holds no IIN or name", async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `k2-web-ui-${kind}-`));
    const env = { K2_API_AUTH: 'none', EKO_SIM_STATUS_DELAY: '300ms', K2_PAYLOAD_KEYS: `web-ui-test:${randomBytes(32).toString('base64')}` };
    system = await startTopology(kind, { dataDir, env, webUi: true });
    connection = await Connection.connect({ address: system.temporalAddress });
    // Search attributes are never encoded: a plain client can list and filter the cases.
    const plain = new Client({ connection });

    const contracts = await feedDemoLoans({ k2BaseUrl: system.apiUrl, absSimUrl: system.simUrls.abs, count: COUNT, seed: SEED });
    const loans = generateLoans(SEED, COUNT);
    expect(loans.map((l) => l.contract_number)).toEqual(contracts);
    const stageQuery = `WorkflowType="caseWorkflow" AND K2Stage="${STAGE}"`;
    const ids = await waitForCases(plain, stageQuery, COUNT);
    const loan = loans.find((l) => ids.includes(caseWorkflowId(l.contract_number)))!;
    const workflowId = caseWorkflowId(loan.contract_number);

    profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-chromium-'));
    context = await chromium.launchPersistentContext(profileDir, {
      executablePath: (browser as { path: string }).path,
      args: CHROMIUM_ARGS,
      headless: true,
      viewport: { width: 1600, height: 1400 },
    });
    const page = context.pages()[0] ?? (await context.newPage());
    const codec = system.codecUrl;
    const ui = system.uiUrl;

    // 1. Sign in at the codec server (the dev server's Web UI has no login of its own).
    await page.goto(`${codec}/login`);
    await page.locator('#token').fill(DEMO_SECRETS.K2_CODEC_TOKEN);
    await page.locator('button[type="submit"]').click();
    await page.locator('#signed-in').waitFor();

    // 2. Filter the cases by K2Stage, as the README's links do.
    await page.goto(`${ui}/namespaces/default/workflows?query=${encodeURIComponent(stageQuery)}`);
    // The dev server's Web UI needs the operator's codec setting; the cluster's UI server is configured with it.
    if (kind === 'dev') await useCodecServerInBrowser(page, codec);
    const row = page.locator(`a[href*="/workflows/${workflowId}/"]`).first();
    await row.waitFor({ timeout: 60_000 });
    for (const id of ids) await expect(page.locator(`a[href*="/workflows/${id}/"]`).count()).resolves.toBeGreaterThan(0);

    // 3. Open the case: its input is the loan, decoded through the codec server.
    await row.click();
    await page.waitForURL(new RegExp(`/workflows/${workflowId}/`));
    const input = page.getByText(loan.iinbin).first();
    await input.waitFor({ timeout: 60_000 });
    await expect(page.getByText(loan.fullname).first().isVisible()).resolves.toBe(true);
    await expect(page.getByText(loan.contract_number).first().isVisible()).resolves.toBe(true);
    await expect(page.locator('[data-testid="data-encoder-status-success"]').count()).resolves.toBeGreaterThan(0);
    await input.scrollIntoViewIfNeeded();
    fs.mkdirSync(path.dirname(screenshotOf(kind)), { recursive: true });
    await page.screenshot({ path: screenshotOf(kind), fullPage: true });

    // 4. The same history without the codec: the contract is there (it names the case), the borrower is not.
    const history = await plain.workflow.getHandle(workflowId).fetchHistory();
    const bytes = Buffer.from(temporal.api.history.v1.History.encode(history).finish());
    expect(bytes.includes(Buffer.from(loan.contract_number, 'utf8'))).toBe(true);
    for (const l of loans) {
      expect(bytes.includes(Buffer.from(l.iinbin, 'utf8'))).toBe(false);
      expect(bytes.includes(Buffer.from(l.fullname, 'utf8'))).toBe(false);
    }

    // 5. The CLI as the README tells operators: with the codec endpoint and the token the loan reads; without the token it does not.
    const show = (auth: string[]) =>
      spawnSync(
        temporalCliPath(),
        ['workflow', 'show', '-w', workflowId, '--address', system!.temporalAddress, '--codec-endpoint', codec, ...auth, '--output', 'json'],
        { encoding: 'utf8', timeout: 60_000 },
      );
    const withToken = show(['--codec-auth', `Bearer ${DEMO_SECRETS.K2_CODEC_TOKEN}`]);
    expect(withToken.status).toBe(0);
    expect(startInput(withToken.stdout)).toContain(loan.iinbin);
    const withoutToken = show([]);
    expect(withoutToken.status).not.toBe(0);
    expect(startInput(withoutToken.stdout)).not.toContain(loan.iinbin);

    // 6. The codec server's log: the browser's decodes came with the sign-in cookie from the UI's origin, and no payload content is logged.
    const codecLog = await logWhen(
      path.join(dataDir, 'logs', 'codec.log'),
      (log) => log.includes('"authenticatedBy":"bearer"') && log.includes('"status":401'),
    );
    expect(codecLog).toMatch(new RegExp(`"msg":"codec request","op":"decode",[^\n]*"authenticatedBy":"session","origin":"${ui}"`));
    expect(codecLog).toMatch(/"msg":"codec request","op":"decode",[^\n]*"authenticatedBy":"bearer","origin":"none"/);
    expect(codecLog).toMatch(/"msg":"codec request refused",[^\n]*"status":401,"origin":"none"/);
    for (const l of loans) for (const secret of [l.iinbin, l.fullname]) expect(codecLog).not.toContain(secret);
  });
});
