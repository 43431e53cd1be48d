// The Temporal Web UI in a real headless Chromium: a backup found by its search attribute, and its page showing the
// summary and details the backup set. The screenshots are kept under test-artifacts/ (git-ignored).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../src/config/local-stack';
import { backupResult, startBackup } from '../../src/operations/backup';
import { ensureRecordings, isolatedConfig } from '../support/backup-fixture';
import { chromiumPath } from '../support/chromium';
import { temporalHarness, type TemporalHarness } from '../support/temporal';

const artifacts = join(repoRoot, 'test-artifacts');
/** The UI is a single-page app that loads, then asks the server: generous on a loaded 2-core machine. */
const UI_WAIT_MS = 90_000;
/** Evaluated in the page (a string: this project's TypeScript has no DOM types). */
const BODY_TEXT = "document.body ? document.body.innerText : ''";

describe('Temporal Web UI', () => {
  const config = isolatedConfig();
  const deployment = config.deployment.name;
  const reason = `web ui ${deployment}`;
  const ui = `${config.temporal.uiUrl}/namespaces/${encodeURIComponent(config.temporal.namespace)}`;
  let h: TemporalHarness;
  let browser: Browser;
  let page: Page;
  let backup: { backupId: string; workflowId: string; runId: string };

  beforeAll(async () => {
    const executablePath = chromiumPath();
    h = await temporalHarness(config);
    await ensureRecordings(10, 8_000);
    backup = await h.withWorker(async () => {
      const handle = await startBackup(h.client, config, { taskQueue: h.taskQueue, reason, requestedBy: 'vitest' });
      const result = await backupResult(handle);
      return { backupId: result.backupId, workflowId: handle.workflowId, runId: handle.firstExecutionRunId };
    });
    // As root (CI), Chromium runs only without its sandbox; /dev/shm is small in containers.
    browser = await puppeteer.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'], protocolTimeout: 180_000 });
    page = await browser.newPage();
    page.setDefaultTimeout(UI_WAIT_MS);
    page.setDefaultNavigationTimeout(UI_WAIT_MS);
    await page.setViewport({ width: 1400, height: 1000 });
    mkdirSync(artifacts, { recursive: true });
  }, 900_000);
  afterAll(async () => {
    await browser?.close();
    await h?.close();
  });

  /** Text of the page and of its frames (the UI renders summaries in frames of their own). */
  const allText = async (p: Page) => {
    const texts = await Promise.all(p.frames().map((f) => f.evaluate(BODY_TEXT).catch(() => '')));
    return texts.join('\n');
  };

  it('lists the backup by its VaultpamBackupId search attribute, and no other run', async () => {
    const query = `VaultpamBackupId="${backup.backupId}"`;
    const runLink = `a[href*="/workflows/${encodeURIComponent(backup.workflowId)}/${backup.runId}"]`;
    // Visibility is eventually consistent: reload until the run is listed (the UI does not poll by itself).
    const deadline = Date.now() + UI_WAIT_MS;
    for (;;) {
      await page.goto(`${ui}/workflows?query=${encodeURIComponent(query)}`, { waitUntil: 'domcontentloaded' });
      const found = await page.waitForSelector(runLink, { timeout: 20_000 }).catch(() => null);
      if (found) break;
      if (Date.now() > deadline) throw new Error(`the Web UI did not list ${backup.workflowId} for ${query}:\n${await allText(page)}`);
    }
    const text = await page.evaluate(BODY_TEXT);
    expect(text).toContain(backup.workflowId);
    expect(text).toContain(backup.runId);
    expect(text).toContain('backupWorkflow');
    // The query is the one the URL gave: the other runs of the same workflow id (earlier backups) are not listed.
    const runs = await page.$$eval(`a[href*="/workflows/${encodeURIComponent(backup.workflowId)}/"]`, (links) => [...new Set(links.map((a) => a.getAttribute('href')!.split('/')[5]))]);
    expect(runs).toEqual([backup.runId]);
    const screenshot = join(artifacts, 'web-ui-backup.png');
    await page.screenshot({ path: screenshot, fullPage: true });
    process.stdout.write(`Web UI screenshot (list by ${query}): ${screenshot}\n`);
  });

  it('lists it by its deployment too, and a query for another backup id lists nothing', async () => {
    await page.goto(`${ui}/workflows?query=${encodeURIComponent(`VaultpamDeployment="${deployment}" AND VaultpamOperation="backup"`)}`, { waitUntil: 'domcontentloaded' });
    await page.waitForSelector(`a[href*="/workflows/${encodeURIComponent(backup.workflowId)}/${backup.runId}"]`);
    await page.goto(`${ui}/workflows?query=${encodeURIComponent('VaultpamBackupId="20000101T000000Z-000000"')}`, { waitUntil: 'domcontentloaded' });
    await page.waitForFunction(`(${BODY_TEXT}).includes('There are no results for the applied filters')`);
    expect(await page.$(`a[href*="/workflows/${encodeURIComponent(backup.workflowId)}/"]`)).toBeNull();
  });

  it("opens the backup's page, which shows its summary and details, and its search attributes", async () => {
    const run = `${ui}/workflows/${encodeURIComponent(backup.workflowId)}/${backup.runId}`;
    await page.goto(`${run}/search-attributes`, { waitUntil: 'domcontentloaded' });
    await page.waitForFunction(`(${BODY_TEXT}).includes('"VaultpamBackupId": "${backup.backupId}"')`);
    expect(await page.evaluate(BODY_TEXT)).toContain(`"VaultpamDeployment": "${deployment}"`);

    // Summary and details are the workflow's static metadata: the server keeps them, no worker needs to run.
    await page.goto(`${run}/user-metadata`, { waitUntil: 'domcontentloaded' });
    const summary = `Backup of ${deployment}: ${reason}`;
    const details = 'Requested by vitest; verify standard; target production.';
    const deadline = Date.now() + UI_WAIT_MS;
    let text = '';
    while (Date.now() < deadline) {
      text = await allText(page);
      if (text.includes(summary) && text.includes(details)) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(text).toContain(backup.workflowId);
    expect(text).toContain(summary);
    expect(text).toContain(details);
    const screenshot = join(artifacts, 'web-ui-backup-workflow.png');
    await page.screenshot({ path: screenshot, fullPage: true });
    process.stdout.write(`Web UI screenshot (the backup's page): ${screenshot}\n`);
  });
});
