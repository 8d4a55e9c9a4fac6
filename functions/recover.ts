import { recoverOperations } from '#services';
import { services } from './services.ts';

/** Scheduled every minute: restarts operations whose workflow execution never started. */
export const handler = () => recoverOperations(services);
