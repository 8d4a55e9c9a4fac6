import { waitForWorkersStep } from '#steps';
import { services } from './services.ts';

export const handler = (event: unknown) => waitForWorkersStep(services, event);
