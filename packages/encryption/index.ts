export * from './sealer.ts';
export * from './rotation.ts';
export * from './rewrite-secrets.ts';
