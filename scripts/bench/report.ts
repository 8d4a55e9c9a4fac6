// What every benchmark of `npm run bench` reports with.
import { performance } from 'node:perf_hooks';

/** One line of the report; `pass` is undefined for figures reported without a target. */
export interface BenchRow {
  benchmark: string;
  measured: string;
  baseline: string;
  result: string;
  target: string;
  pass: boolean | undefined;
}

/** The value below which a share `q` (0..1) of the values lie (nearest rank); the median is `quantile(values, 0.5)`. */
export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (q === 0.5) {
    const middle = Math.floor(sorted.length / 2);
    return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
  }
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? 0;
}

export const median = (values: readonly number[]): number => quantile(values, 0.5);

export async function timed(run: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await run();
  return performance.now() - start;
}

export const ms = (value: number): string => `${value.toFixed(1)} ms`;
export const ratio = (value: number): string => value.toFixed(2);
export const perSecond = (count: number, elapsedMs: number): string => `${Math.round((count * 1000) / elapsedMs).toLocaleString('en-US')}/s`;
