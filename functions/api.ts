import { handle } from 'hono/aws-lambda';
import { newApp } from '#api';
import { loadReferenceScript } from './reference-script.ts';
import { services } from './services.ts';

export const app = newApp(services, { referenceScript: loadReferenceScript });
// eslint-disable-next-line @typescript-eslint/no-deprecated -- its announced successor, @hono/aws-lambda, is not published yet
export const handler = handle(app);
