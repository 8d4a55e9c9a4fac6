export { newApp, openApiDocument } from './app.ts';
export type { AppEnv } from './context.ts';
export { PROBLEM_CONTENT_TYPE } from './problem.ts';
