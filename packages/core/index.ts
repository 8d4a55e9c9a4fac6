export * from './cluster-spec.ts';
export * from './errors.ts';
export * from './ids.ts';
export * from './order-rules.ts';
export * from './phases.ts';
export * from './resources.ts';
export * from './log.ts';
export * from './problem.ts';
