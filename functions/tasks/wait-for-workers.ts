import { waitForWorkersStep } from '#lifecycle';
import { services } from '../services.ts';

export const handler = (event: unknown) => waitForWorkersStep(services, event);
