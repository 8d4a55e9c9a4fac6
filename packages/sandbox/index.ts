export * from './cloud/index.ts';
export * from './dynamodb.ts';
export * from './faults.ts';
export * from './kms/index.ts';
export * from './kube/index.ts';
export * from './local-stack.ts';
export * from './ssm/index.ts';
export * from './stepfunctions/index.ts';
export { startChartRunner } from './kube/helm-charts.ts';
