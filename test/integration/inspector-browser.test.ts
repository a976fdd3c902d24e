/**
 * The inspector page in a real browser (Debian's chromium through playwright-core): live updates, the
 * rejected delivery and its reason, the detail without the signature, replay, and a hostile payload that
 * stays text. In CI a missing browser fails this file (CHROMIUM_PATH or /usr/bin/chromium); elsewhere it is
 * skipped with a note. Leaves a screenshot in test-artifacts/inspector.png.
 */
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { type LocalServer, startLocalServer } from '../../local/server';
import { sign, vehicleState } from '../support/fixtures';
import { storedCheck } from '../support/webhook-check';

const TOKEN = 'browser-test-management-token';
const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const present = existsSync(executablePath);
if (!present && !process.env.CI)
  console.warn(`inspector-browser.test.ts skipped: no browser at ${executablePath} (apt-get install chromium)`);
/** What the tests read inside the page (this project's types have no DOM). */
type InPage = { pwned?: number; document: { querySelectorAll(s: string): { length: number } } };
const silent = { info() {}, warn() {}, error() {} };
const ARTIFACTS = path.join(__dirname, '..', '..', 'test-artifacts');

(present || process.env.CI ? describe : describe.skip)('the inspector page in chromium', () => {
  let server: LocalServer;
  let browser: Browser;
  beforeAll(async () => {
    const lakeDir = mkdtempSync(path.join(tmpdir(), 'inspector-browser-'));
    server = await startLocalServer({
      lakeDir,
      managementToken: TOKEN,
      port: 0,
      logger: silent,
      workflowDir: storedCheck(false),
    });
    browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('shows deliveries live, their detail without the signature, replays them, and keeps payloads inert', async () => {
    const origin = new URL(server.url).origin;
    const context = await browser.newContext({ viewport: { width: 1400, height: 800 } });
    const page = await context.newPage();
    const problems: string[] = [];
    const offsite: string[] = [];
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(`${origin}/`) || url.startsWith('data:')) return route.continue();
      offsite.push(url);
      return route.abort();
    });
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('dialog', (d) => {
      problems.push(`dialog: ${d.message()}`);
      void d.dismiss();
    });
    const rowsAre = (n: number) =>
      page.waitForFunction(
        (k) => (globalThis as unknown as InPage).document.querySelectorAll('#rows tr').length === k,
        n,
      );
    let navigations = 0;
    page.on('framenavigated', (f) => {
      if (f === page.mainFrame()) navigations++;
    });

    await page.goto(server.inspectorUrl as string);
    expect(page.url()).toBe(`${origin}/`); // the key left the address bar
    await page.locator('#live', { hasText: 'live' }).waitFor();
    const loaded = navigations;

    const post = (body: string, signature: string) =>
      fetch(server.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'sc-signature': signature },
        body,
      });
    const good = vehicleState('ev-live', { vehicleId: 'veh-live' });
    const goodSignature = sign(good, TOKEN);
    expect((await post(good, goodSignature)).status).toBe(200);
    const goodRow = page.locator('#rows tr', { hasText: 'ev-live' });
    await goodRow.waitFor(); // no reload: server-sent events
    await expect(goodRow.textContent()).resolves.toContain('stored');

    const forged = vehicleState('ev-forged');
    const forgedSignature = sign(forged, 'not-the-token');
    expect((await post(forged, forgedSignature)).status).toBe(401);
    const forgedRow = page.locator('#rows tr', { hasText: 'ev-forged' });
    await forgedRow.waitFor();
    await expect(forgedRow.textContent()).resolves.toMatch(/401.*invalid SC-Signature/);

    const hostile = vehicleState('</textarea><script>window.pwned=1</script>', {
      vehicleId: 'javascript:window.pwned=2<img src=x onerror=window.pwned=3>',
    });
    expect((await post(hostile, sign(hostile, TOKEN))).status).toBe(200);
    const hostileRow = page.locator('#rows tr', { hasText: '</textarea><script>' });
    await hostileRow.waitFor();
    await hostileRow.click();
    await page.locator('#body', { hasText: 'onerror=window.pwned=3' }).waitFor();

    await goodRow.click();
    await page.locator('#body', { hasText: '"eventId": "ev-live"' }).waitFor();
    await expect(page.locator('#detail').textContent()).resolves.toMatch(/tractionbattery-stateofcharge.*78.*percent/);
    for (const html of [await page.content(), await page.locator('body').textContent()]) {
      expect(html).not.toContain(goodSignature);
      expect(html).not.toContain(forgedSignature);
    }

    await page.locator('#replay').click();
    await page.locator('#rows tr', { hasText: 'stored (replay)' }).waitFor();
    expect(await page.locator('#rows tr', { hasText: 'ev-live' }).count()).toBe(2);

    // The filters: the search narrows the list, the verdict filter shows only its verdict.
    await page.fill('#f-text', 'veh-live');
    await rowsAre(2);
    await page.fill('#f-text', '');
    await page.selectOption('#f-verdict', 'quarantined');
    await rowsAre(1);
    await page.selectOption('#f-verdict', '');

    mkdirSync(ARTIFACTS, { recursive: true });
    await hostileRow.click();
    await page.locator('#body', { hasText: 'onerror' }).waitFor();
    await page.screenshot({ path: path.join(ARTIFACTS, 'inspector.png') });

    // The fleet view: both vehicles from the lake (the hostile id as text), and the per-hour chart.
    await server.flush();
    await page.locator('#tab-fleet').click();
    const fleet = page.locator('#fleet-table');
    await fleet.waitFor();
    await expect(fleet.textContent()).resolves.toMatch(/veh-live.*78 percent/);
    await expect(fleet.textContent()).resolves.toContain('javascript:window.pwned=2<img src=x onerror=window.pwned=3>');
    expect(await page.locator('#fleet svg#chart rect.bar').count()).toBeGreaterThanOrEqual(1);
    // The webhook's health heads the tab: this one is disabled, so its line is the alarm colour.
    await expect(page.locator('#webhook-health p.reason').textContent()).resolves.toMatch(
      /^webhook wh-1: UNHEALTHY: the webhook is disabled/,
    );
    expect(await page.locator('#fleet img, #fleet script').count()).toBe(0);
    await page.screenshot({ path: path.join(ARTIFACTS, 'inspector-fleet.png') });
    await page.locator('#tab-requests').click();
    await page.locator('#list').waitFor();

    expect(await page.evaluate(() => (globalThis as unknown as InPage).pwned)).toBeUndefined();
    expect(await page.locator('#rows img, #detail img, #rows script, #detail script, textarea').count()).toBe(0);
    expect(navigations).toBe(loaded);
    expect(page.url()).toBe(`${origin}/`);
    expect(problems).toEqual([]);
    expect(offsite).toEqual([]);
    await context.close();
  });
});
