import { startDueRotations } from '#services';
import { services } from './services.ts';

/** Scheduled hourly: starts the encryption-key rotations that rotationPeriodDays made due. */
export const handler = () => startDueRotations(services);
