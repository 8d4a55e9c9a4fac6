import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';

// kube-bench's YAML allows any scalar as a compare value (false, 0, "600").
const scalar = z.union([z.string(), z.number(), z.boolean()]).transform(String);

export const TestItemSchema = z.object({
  flag: z.string().optional(),
  path: z.string().optional(),
  env: z.string().optional(),
  // kube-bench defaults `set` to true: an item without it asks that the flag be present.
  set: z.boolean().default(true),
  compare: z.object({ op: z.string(), value: scalar }).optional(),
});

export const CheckSchema = z.object({
  id: z.string(),
  text: z.string(),
  type: z.enum(['manual', 'skip']).optional(),
  audit: z.string().optional(),
  audit_config: z.string().optional(),
  use_multiple_values: z.boolean().default(false),
  tests: z
    .object({
      bin_op: z.enum(['and', 'or']).optional(),
      test_items: z.array(TestItemSchema),
    })
    .optional(),
  remediation: z.string().default(''),
  scored: z.boolean().default(false),
});

export const GroupSchema = z.object({
  id: z.union([z.string(), z.number()]).transform(String),
  text: z.string(),
  type: z.string().optional(),
  checks: z.array(CheckSchema),
});

export const ControlsSchema = z.object({
  id: z.union([z.string(), z.number()]).transform(String),
  text: z.string(),
  type: z.string(),
  version: z.string().optional(),
  groups: z.array(GroupSchema),
});

export type TestItem = z.infer<typeof TestItemSchema>;
export type Check = z.infer<typeof CheckSchema>;
export type Group = z.infer<typeof GroupSchema>;
export type Controls = z.infer<typeof ControlsSchema>;

export interface Benchmark {
  version: string;
  /** One entry per check-definition file, in a stable order. */
  controls: Controls[];
}

export const BENCHMARK_FILES = ['master.yaml', 'etcd.yaml', 'controlplane.yaml', 'node.yaml', 'policies.yaml'] as const;

export class BenchmarkParseError extends Error {
  override readonly name = 'BenchmarkParseError';
}

/**
 * kube-bench is read by go-yaml, which accepts a double-quoted scalar whose
 * continuation line is indented no deeper than its key (etcd.yaml 2.4 has
 * one). The `yaml` package rejects that, so such lines are indented two more
 * than the key; folding strips leading spaces, so the value is unchanged.
 */
export function indentQuotedContinuations(source: string): string {
  const unescapedQuotes = (line: string): number => (line.match(/(?<!\\)"/g) ?? []).length;
  const out: string[] = [];
  let openAt: number | undefined;
  for (const line of source.split('\n')) {
    if (openAt !== undefined) {
      const indent = line.length - line.trimStart().length;
      out.push(indent <= openAt && line.trim() !== '' ? ' '.repeat(openAt + 2) + line.trimStart() : line);
      if (unescapedQuotes(line) % 2 === 1) openAt = undefined;
      continue;
    }
    out.push(line);
    const opener = /^( *)(- )?[\w-]+: "/.exec(line);
    if (opener && unescapedQuotes(line) % 2 === 1) openAt = (opener[1] ?? '').length + (opener[2] ? 2 : 0);
  }
  return out.join('\n');
}

/** Ids like `2.10` must stay strings: read as numbers, 2.10 would become 2.1. */
function quoteNumericIds(source: string): string {
  return source.replace(/^(\s*(?:- )?id:\s*)(\d+(?:\.\d+)*)\s*$/gm, '$1"$2"');
}

export function parseControls(source: string, fileName: string): Controls {
  let raw: unknown;
  try {
    raw = parse(quoteNumericIds(indentQuotedContinuations(source)));
  } catch (error) {
    throw new BenchmarkParseError(`${fileName}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const parsed = ControlsSchema.safeParse(raw);
  if (!parsed.success) throw new BenchmarkParseError(`${fileName}: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

/** Reads the kube-bench check definitions of one benchmark version from `dir`. */
export async function loadBenchmark(dir: string): Promise<Benchmark> {
  const controls = await Promise.all(
    BENCHMARK_FILES.map(async (file) => parseControls(await readFile(join(dir, file), 'utf8'), file)),
  );
  return { version: controls[0]?.version ?? 'unknown', controls };
}

export function allChecks(benchmark: Benchmark): { check: Check; group: Group; controls: Controls }[] {
  return benchmark.controls.flatMap((controls) =>
    controls.groups.flatMap((group) => group.checks.map((check) => ({ check, group, controls }))),
  );
}
