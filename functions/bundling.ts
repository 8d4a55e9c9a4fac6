/**
 * How every Lambda is bundled. `LAMBDA_NODEJS` is what sst.config.ts gives
 * SST for each function; `SST_ESBUILD_OPTIONS` is what SST's bundler
 * (sst/sst pkg/runtime/node/build.go) adds around it. `npm run build` and
 * `npm run bench` bundle with both, so they measure what production deploys.
 */

/**
 * The Lambda runtime every function runs on, with the dates AWS ends it, from the runtimes table of
 * https://docs.aws.amazon.com/lambda/latest/dg/lambda-nodejs.html (nodejs24.x, Amazon Linux 2023). After
 * `blockFunctionCreate` a deployment cannot create a function on it, after `blockFunctionUpdate` not change one:
 * nodejs20.x, which Kiln used before, was blocked on 2026-08-31 and 2026-09-30. Node.js 24 takes only async handlers
 * (no callback argument); every handler here is one.
 */
export const LAMBDA_RUNTIME = { identifier: 'nodejs24.x', deprecation: '2028-04-30', blockFunctionCreate: '2028-06-01', blockFunctionUpdate: '2028-07-01' } as const;

export const LAMBDA_NODEJS = {
  format: 'esm',
  minify: true,
  sourcemap: true,
  // Routes that need a heavy library (kubeconfig signing) load it on their first call, not at cold start.
  splitting: true,
  // The oldest Node the bundles run on: Lambda's (LAMBDA_RUNTIME) is newer, local mode, the tests and the benchmarks
  // run them on this machine's Node 20.
  esbuild: { target: 'node20' },
  // esbuild plugins, as a file SST loads (relative to sst.config.ts): zod's error messages in English only.
  plugins: './functions/esbuild-plugins.mjs',
} as const;

/** SST's own esbuild options for an ESM function (createRequire banner, keepNames, module-first resolution). */
export const SST_ESBUILD_OPTIONS = {
  platform: 'node',
  bundle: true,
  keepNames: true,
  format: 'esm',
  mainFields: ['module', 'main'],
  external: ['sharp', 'pg-native'],
  outExtension: { '.js': '.mjs' },
  banner: {
    js: [
      `import { createRequire as topLevelCreateRequire } from 'module';`,
      `const require = topLevelCreateRequire(import.meta.url);`,
      `import { fileURLToPath as topLevelFileUrlToPath, URL as topLevelURL } from "url"`,
      `const __filename = topLevelFileUrlToPath(import.meta.url)`,
      `const __dirname = topLevelFileUrlToPath(new topLevelURL(".", import.meta.url))`,
    ].join('\n'),
  },
} as const;

/** Every Lambda entry point, by the name sst.config.ts gives its function. */
export const LAMBDA_ENTRY_POINTS = {
  Api: 'functions/api.ts',
  Recovery: 'functions/recover.ts',
  RotationSchedule: 'functions/rotation-schedule.ts',
  KubernetesVersionSupport: 'functions/version-support.ts',
  CertificateRenewals: 'functions/certificate-renewals.ts',
  KubernetesUpgrades: 'functions/kubernetes-upgrades.ts',
  WebhookDelivery: 'functions/webhook-dispatcher.ts',
  WebhookSender: 'functions/webhook-sender.ts',
  UsageReports: 'functions/usage-reports.ts',
  Health: 'functions/health.ts',
  TaskPlan: 'functions/tasks/bookkeeping.ts',
  TaskBootstrap: 'functions/tasks/bookkeeping.ts',
  TaskNetwork: 'functions/tasks/addons.ts',
  TaskWaitForControlPlane: 'functions/tasks/cluster-api.ts',
  TaskWaitForWorkers: 'functions/tasks/cluster-api.ts',
  TaskAddons: 'functions/tasks/addons.ts',
  TaskVerify: 'functions/tasks/addons.ts',
  TaskMarkReady: 'functions/tasks/bookkeeping.ts',
  TaskMarkDeleted: 'functions/tasks/bookkeeping.ts',
  TaskRecordFailure: 'functions/tasks/bookkeeping.ts',
  TaskAwaitInfrastructureSlot: 'functions/tasks/bookkeeping.ts',
  TaskReleaseInfrastructureSlot: 'functions/tasks/bookkeeping.ts',
  TaskRotateEncryptionKey: 'functions/tasks/cluster-api.ts',
  TaskRemediateReboot: 'functions/tasks/machines.ts',
  TaskRemediateRecover: 'functions/tasks/machines.ts',
  TaskRemediateDrain: 'functions/tasks/machines.ts',
  TaskRemediateReplace: 'functions/tasks/machines.ts',
  TaskRemediateAwaitReplacement: 'functions/tasks/machines.ts',
  TaskRemediateRetire: 'functions/tasks/machines.ts',
  TaskRemediateFinish: 'functions/tasks/machines.ts',
  TaskRemediateFailure: 'functions/tasks/machines.ts',
  TaskUpdateDrainNodes: 'functions/tasks/machines.ts',
  TaskUpdateRemoveMachines: 'functions/tasks/machines.ts',
  TaskUpdateJoinToken: 'functions/tasks/machines.ts',
  TaskUpdateAwaitNodes: 'functions/tasks/machines.ts',
  TaskUpdateRollMachines: 'functions/tasks/machines.ts',
  TaskUpdateRollControlPlane: 'functions/tasks/machines.ts',
  TaskUpdatePodSecurityDefaults: 'functions/tasks/cluster-api.ts',
  // The Fargate task's entry: bundled the same way for the size report, though it ships in a container image.
  Infrastructure: 'functions/tasks/infrastructure.ts',
} as const;

export type LambdaName = keyof typeof LAMBDA_ENTRY_POINTS;

/**
 * Packages each function must never contain: the API and the schedulers
 * serve requests and scan indexes, so they carry no infrastructure program,
 * no Kubernetes client, no add-on installer and no compiler. Only the
 * infrastructure task runs Pulumi.
 */
const NOT_FOR_REQUESTS = ['@pulumi/', '@kubernetes/client-node', 'kubernetes-models', '@kubernetes-models/', 'typescript', '@grpc/'];
const NOT_FOR_STEPS = ['@pulumi/', 'typescript'];

export const FORBIDDEN_PACKAGES: Readonly<Record<LambdaName, readonly string[]>> = {
  Api: NOT_FOR_REQUESTS,
  Recovery: NOT_FOR_REQUESTS,
  RotationSchedule: NOT_FOR_REQUESTS,
  KubernetesVersionSupport: NOT_FOR_REQUESTS,
  CertificateRenewals: NOT_FOR_REQUESTS,
  KubernetesUpgrades: NOT_FOR_REQUESTS,
  WebhookDelivery: NOT_FOR_REQUESTS,
  WebhookSender: NOT_FOR_REQUESTS,
  UsageReports: NOT_FOR_REQUESTS,
  // It reads Nodes, so it carries client-node; like a step, never Pulumi.
  Health: NOT_FOR_STEPS,
  TaskPlan: NOT_FOR_STEPS,
  TaskBootstrap: NOT_FOR_STEPS,
  TaskNetwork: NOT_FOR_STEPS,
  TaskWaitForControlPlane: NOT_FOR_STEPS,
  TaskWaitForWorkers: NOT_FOR_STEPS,
  TaskAddons: NOT_FOR_STEPS,
  TaskVerify: NOT_FOR_STEPS,
  TaskMarkReady: NOT_FOR_STEPS,
  TaskMarkDeleted: NOT_FOR_STEPS,
  TaskRecordFailure: NOT_FOR_STEPS,
  TaskAwaitInfrastructureSlot: NOT_FOR_STEPS,
  TaskReleaseInfrastructureSlot: NOT_FOR_STEPS,
  TaskRotateEncryptionKey: NOT_FOR_STEPS,
  TaskRemediateReboot: NOT_FOR_STEPS,
  TaskRemediateRecover: NOT_FOR_STEPS,
  TaskRemediateDrain: NOT_FOR_STEPS,
  TaskRemediateReplace: NOT_FOR_STEPS,
  TaskRemediateAwaitReplacement: NOT_FOR_STEPS,
  TaskRemediateRetire: NOT_FOR_STEPS,
  TaskRemediateFinish: NOT_FOR_STEPS,
  TaskRemediateFailure: NOT_FOR_STEPS,
  TaskUpdateDrainNodes: NOT_FOR_STEPS,
  TaskUpdateRemoveMachines: NOT_FOR_STEPS,
  TaskUpdateJoinToken: NOT_FOR_STEPS,
  TaskUpdateAwaitNodes: NOT_FOR_STEPS,
  TaskUpdateRollMachines: NOT_FOR_STEPS,
  TaskUpdateRollControlPlane: NOT_FOR_STEPS,
  TaskUpdatePodSecurityDefaults: NOT_FOR_STEPS,
  Infrastructure: [],
};

/**
 * The reference page's script (Scalar's standalone build, from the pinned `@scalar/api-reference`), at the same
 * path relative to the project root in the repository and in the API's Lambda package, where sst.config.ts copies
 * it (`copyFiles`): functions/api.ts reads it from there in both.
 */
export const REFERENCE_SCRIPT_FILE = 'node_modules/@scalar/api-reference/dist/browser/standalone.js';
