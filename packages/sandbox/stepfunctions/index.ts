export { startStepFunctionsService, type StepFunctionsService, type StepFunctionsServiceOptions } from './server.ts';
export type { ExecutionHistoryEntry, ExecutionStatus, ExecutionView } from './executions.ts';
export type { EcsTaskHandler, LambdaHandler } from './task-bindings.ts';
