import type { OpenAPIHono } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { ADMIN_SCOPE, KilnError, type OperationScope } from '#core';
import type { AppEnv } from './context.ts';

/** Where an operation names the scope it needs, in its definition and in the document. */
export const SCOPE_EXTENSION = 'x-kiln-scope';

/**
 * An operation's security: the bearer token, holding `scope`. Each route says here, in its definition, what it needs;
 * the document shows it as `x-kiln-scope` (a bearer scheme's requirement has no scopes of its own in OpenAPI's
 * lint), and `scopeEnforcement` refuses the keys without it.
 */
export function needs(scope: OperationScope): { security: { bearer: [] }[]; [SCOPE_EXTENSION]: OperationScope } {
  return { security: [{ bearer: [] }], [SCOPE_EXTENSION]: scope };
}

interface ScopedRoute {
  method: string;
  pattern: RegExp;
  scope: string | undefined;
}

/** The paths a route's path template (such as /v1/clusters/{id}) serves. */
export function pathPattern(template: string): RegExp {
  return new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`);
}

/** The app's operations with the scope each needs, from their definitions. */
function scopedRoutes(app: OpenAPIHono<AppEnv>): ScopedRoute[] {
  return app.openAPIRegistry.definitions.flatMap((definition) => {
    if (definition.type !== 'route') return [];
    const { method, path } = definition.route;
    const scope: unknown = definition.route[SCOPE_EXTENSION];
    return [{ method: method.toUpperCase(), pattern: pathPattern(path), scope: typeof scope === 'string' ? scope : undefined }];
  });
}

/**
 * Refuses, with 403 naming the scope, a tenant key that lacks the scope the operation needs, and a tenant key on an
 * admin operation. An operation that names no scope is refused to every key (a new route must say what it needs).
 * The admin token passes: the routes that need a tenant refuse it themselves (tenantOf). A path no operation serves
 * passes on to its 404 or 405.
 */
export function scopeEnforcement(app: OpenAPIHono<AppEnv>): MiddlewareHandler<AppEnv> {
  let routes: ScopedRoute[] | undefined;
  return async (c, next) => {
    const principal = c.get('principal');
    if (principal.kind === 'tenant') {
      // Read once, on the first request: every route is registered by then.
      routes ??= scopedRoutes(app);
      const method = c.req.method === 'HEAD' ? 'GET' : c.req.method;
      const route = routes.find((candidate) => candidate.method === method && candidate.pattern.test(c.req.path));
      if (route !== undefined) {
        const where = `${method} ${c.req.path}`;
        if (route.scope === ADMIN_SCOPE) throw new KilnError('forbidden', `${where} needs the admin token, not a tenant API key.`);
        if (route.scope === undefined) throw new KilnError('forbidden', `${where} is not open to API keys.`);
        if (!(principal.scopes as readonly string[]).includes(route.scope)) {
          throw new KilnError('forbidden', `This API key lacks the ${route.scope} scope, which ${where} needs: use a key that holds it.`);
        }
      }
    }
    await next();
  };
}
