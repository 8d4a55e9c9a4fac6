import type { Context } from 'hono';
import { KilnError } from '#core';
import type { KilnServices, Principal, TenantPrincipal } from '#services';

export interface AppEnv {
  Variables: {
    requestId: string;
    principal: Principal;
    services: KilnServices;
  };
}

/** The calling tenant's key; routes that reach here already passed the auth middleware. */
export function tenantKeyOf(c: Context<AppEnv>): TenantPrincipal {
  const principal = c.get('principal');
  if (principal.kind !== 'tenant') throw new KilnError('forbidden', 'This endpoint needs a tenant API key, not the admin token.');
  return principal;
}

/** The calling tenant. */
export function tenantOf(c: Context<AppEnv>): string {
  return tenantKeyOf(c).tenantId;
}
