import { markReadyStep } from '#steps';
import { services } from './services.ts';

export const handler = (event: unknown) => markReadyStep(services, event);
