import type { Context } from 'aws-lambda';
import { handle } from 'hono/aws-lambda';
import { newApp } from '#api';
import { loadReferenceScript } from './reference-script.ts';
import { observability, services } from './services.ts';

export const app = newApp(services, { referenceScript: loadReferenceScript });
// eslint-disable-next-line @typescript-eslint/no-deprecated -- its announced successor, @hono/aws-lambda, is not published yet
const serve = handle(app);

/** Every log line of the invocation carries the Lambda request id and whether it was a cold start. */
export const handler: typeof serve = async (event, context) => {
  // Hono's type of the context is a subset of the runtime's object, which is what Lambda passes.
  await observability.invoked(context as Context | undefined);
  return serve(event, context);
};
