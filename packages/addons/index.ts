export * from './baseline.ts';
export * from './kube.ts';
