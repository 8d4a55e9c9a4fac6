// eslint-disable-next-line no-restricted-imports -- the polyfill must load before any package entry point
import '../packages/sandbox/polyfills.ts';
