import { markDeletedStep } from '#steps';
import { services } from './services.ts';

export const handler = (event: unknown) => markDeletedStep(services, event);
