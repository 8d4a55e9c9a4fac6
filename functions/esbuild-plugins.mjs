// The esbuild plugins every Lambda is bundled with: SST reads this file (LAMBDA_NODEJS.plugins), and so do
// `npm run build` and `npm run bench`, so they measure what production deploys.
import { URL, fileURLToPath } from 'node:url';

const ENGLISH_ONLY = fileURLToPath(new URL('./zod-locales-en.mjs', import.meta.url));

/**
 * zod's error messages in English only. @hono/zod-openapi extends the whole `z` namespace, so esbuild keeps every
 * export of zod, among them `z.locales`: about 40 translations, 264 KB of the API's cold-start bundle that Kiln never
 * uses (its problems are in English; zod itself configures `en` from its own file). Resolving zod's locale index to
 * a module with `en` alone drops them.
 */
const englishOnlyZodLocales = {
  name: 'kiln-english-only-zod-locales',
  setup(build) {
    build.onResolve({ filter: /[\\/]locales[\\/]index\.js$/ }, (args) =>
      /[\\/]node_modules[\\/]zod[\\/]/.test(args.importer) ? { path: ENGLISH_ONLY } : undefined,
    );
  },
};

export default [englishOnlyZodLocales];
