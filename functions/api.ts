import { handle } from 'hono/aws-lambda';
import { newApp } from '#api';
import { services } from './services.ts';

export const app = newApp(services);
export const handler = handle(app);
