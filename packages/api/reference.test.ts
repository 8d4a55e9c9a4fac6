import type { AddressInfo } from 'node:net';
import { type ServerType, serve } from '@hono/node-server';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadReferenceScript } from '../../functions/reference-script.ts';
import { type ApiHarness, startApiHarness } from '../../test/support/api-harness.ts';
import { newApp, openApiDocument } from './app.ts';
import { REFERENCE_CONTENT_SECURITY_POLICY, REFERENCE_SCRIPT_PATH } from './reference.ts';

/** Debian's Chromium, which scripts/install-tools.sh installs (CI runs it before `npm test`). */
const CHROMIUM = '/usr/bin/chromium';

let api: ApiHarness;
let server: ServerType;
let origin: string;
let browser: Browser;
beforeAll(async () => {
  api = await startApiHarness();
  const app = newApp(api.services, { referenceScript: loadReferenceScript });
  server = await new Promise<ServerType>((resolve) => {
    const started = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => {
      resolve(started);
    });
  });
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // As root, without a sandbox; without the background-networking flags Chromium reaches for Google's hosts at start.
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}, 60_000);
afterAll(async () => {
  await browser.close();
  await new Promise((resolve) => server.close(resolve));
  await api.close();
});

describe('the API reference at /docs', () => {
  it('renders every operation in headless Chromium with every request outside the API blocked', async () => {
    const page = await browser.newPage();
    const outside: string[] = [];
    const refused: string[] = [];
    await page.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(`${origin}/`) || url.startsWith('data:')) return route.continue();
      outside.push(url);
      return route.abort('internetdisconnected');
    });
    page.on('console', (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) refused.push(message.text());
    });
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));

    await page.goto(`${origin}/docs`);
    const document = openApiDocument(newApp(api.services)) as unknown as { paths: Record<string, Record<string, { summary?: string }>> };
    const summaries = Object.values(document.paths).flatMap((operations) => Object.values(operations).flatMap((operation) => (operation.summary === undefined ? [] : [operation.summary])));
    expect(summaries.length).toBeGreaterThan(20);
    // The reference is rendered when its sidebar lists every operation by its summary (every tag is open).
    const sidebar = page.locator('.t-doc__sidebar');
    await sidebar.getByText(summaries[0] as string, { exact: true }).waitFor({ timeout: 30_000 });
    const listed = await sidebar.innerText();
    expect(summaries.filter((summary) => !listed.includes(summary))).toEqual([]);
    expect(await page.locator('h1').first().innerText()).toBe('Kiln');
    expect(pageErrors).toEqual([]);
    expect(refused).toEqual([]);
    // It asks the internet for nothing (fonts, telemetry and the CDN are all off).
    expect(outside).toEqual([]);
    await page.close();
  }, 60_000);

  it('serves the page with a policy that allows only this API, and the pinned script from the project', async () => {
    const app = newApp(api.services, { referenceScript: loadReferenceScript });
    const served = await app.request('/docs');
    expect(served.headers.get('content-security-policy')).toBe(REFERENCE_CONTENT_SECURITY_POLICY);
    const html = await served.text();
    expect(html).toContain(`<script src="${REFERENCE_SCRIPT_PATH}"></script>`);
    expect(html).not.toMatch(/https?:\/\//);
    const script = await app.request(REFERENCE_SCRIPT_PATH);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect((await script.text()).length).toBe((await loadReferenceScript()).length);
  });
});
