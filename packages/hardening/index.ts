export { loadBenchmark, parseControls, allChecks, BenchmarkParseError, type Benchmark, type Check, type Controls, type Group, type TestItem } from './benchmark.ts';
export { compareOp } from './compare.ts';
export { buildMachines, RenderedConfigError, type Machine } from './machine.ts';
export { scoreCluster, scoreMachines, SCORED_GROUPS, type CheckResult, type CheckStatus, type Scorecard, type Totals } from './score.ts';
