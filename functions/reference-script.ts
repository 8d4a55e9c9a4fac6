import { readFile } from 'node:fs/promises';
import { REFERENCE_SCRIPT_FILE } from './bundling.ts';
import { once } from './wiring/once.ts';

/**
 * Scalar's standalone script for /docs, read once. This file is in functions/ in the repository, and bundled into
 * functions/api.mjs in the Lambda package: one folder below the root in both, where the script sits at the same path
 * (sst.config.ts copies it there).
 */
export const loadReferenceScript = once(() => readFile(new URL(`../${REFERENCE_SCRIPT_FILE}`, import.meta.url), 'utf8'));
