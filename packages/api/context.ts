import type { Context } from 'hono';
import { KilnError } from '#core';
import type { KilnServices, Principal } from '#services';

export interface AppEnv {
  Variables: {
    requestId: string;
    principal: Principal;
    services: KilnServices;
  };
}

/** The calling tenant; routes that reach here already passed the auth middleware. */
export function tenantOf(c: Context<AppEnv>): string {
  const principal = c.get('principal');
  if (principal.kind !== 'tenant') throw new KilnError('forbidden', 'This endpoint needs a tenant API key, not the admin token.');
  return principal.tenantId;
}
