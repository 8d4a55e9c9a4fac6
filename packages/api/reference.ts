import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from './context.ts';

/** Where the page loads Scalar's script from: this API, never a CDN, so the page works with no internet. */
export const REFERENCE_SCRIPT_PATH = '/docs/scalar.js';

/**
 * What the page may do: scripts only from this API (Scalar reads its configuration from the page's attributes, so
 * nothing inline runs), requests only to this API, styles inline (Scalar injects its own). Fonts and images from
 * anywhere else are refused, so the page renders the same with or without internet.
 */
export const REFERENCE_CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Scalar's configuration: no web fonts, no telemetry, no agent, and the "try it" client sends from the page itself. */
const CONFIGURATION = {
  withDefaultFonts: false,
  defaultOpenAllTags: true,
  telemetry: false,
  hideClientButton: true,
  showDeveloperTools: 'never',
  agent: { disabled: true },
  mcp: { disabled: true },
  documentDownloadType: 'json',
};

const escapeAttribute = (value: string) => value.replace(/&/g, '&amp;').replace(/'/g, '&#39;').replace(/</g, '&lt;');

/** The reference page: Scalar's standalone script finds the document's address and its configuration in the page. */
export const REFERENCE_PAGE = `<!doctype html>
<html lang="en">
  <head>
    <title>Kiln API</title>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
  </head>
  <body>
    <script id="api-reference" data-url="/openapi.json" data-configuration='${escapeAttribute(JSON.stringify(CONFIGURATION))}'></script>
    <script src="${REFERENCE_SCRIPT_PATH}"></script>
  </body>
</html>
`;

/**
 * `/docs` and its script. The script is Scalar's standalone build from the pinned `@scalar/api-reference` package;
 * `loadScript` reads it (the Lambda and local mode read it from the same place, see functions/api.ts).
 */
export function registerReference(app: OpenAPIHono<AppEnv>, loadScript: () => Promise<string>): void {
  app.get('/docs', (c) => {
    c.header('content-security-policy', REFERENCE_CONTENT_SECURITY_POLICY);
    return c.html(REFERENCE_PAGE);
  });
  app.get(REFERENCE_SCRIPT_PATH, async (c) => {
    const script = await loadScript();
    c.header('content-type', 'text/javascript; charset=utf-8');
    // The same for every tenant and only changes with a deployment: any cache may keep it for a day.
    c.header('cache-control', 'public, max-age=86400');
    return c.body(script);
  });
}
