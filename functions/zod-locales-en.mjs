// zod's locale index with its English locale alone (see esbuild-plugins.mjs).
export { default as en } from 'zod/v4/locales/en.js';
