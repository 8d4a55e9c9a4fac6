import { timingSafeEqual } from 'node:crypto';
import { Hono } from 'hono';
import type { Context } from 'hono';
import { problemFor, sha256 } from '#core';
import { accountOfRole } from './iam.ts';
import type { SandboxCluster } from './kube/index.ts';
import type { SandboxMachines } from './machines.ts';
import { type StsService, roleTrustOf } from './sts/index.ts';

/**
 * Chaos controls for local mode, under /v1/sandbox/ with the admin token, so
 * customers can test their integrations (and Kiln its healing) against the
 * failures real machines have: a kubelet that stops, a machine that loses
 * power, an API server nobody can reach; each has its undo. Only the local
 * stack mounts these routes: the production app never has them.
 */
export function chaosRoutes(options: { adminToken: string; machines: SandboxMachines; clusters: ReadonlyMap<string, SandboxCluster>; sts: Pick<StsService, 'trust'> }): Hono {
  const app = new Hono();
  const expected = Buffer.from(sha256(options.adminToken), 'hex');
  // The same problem documents the API answers with.
  const problem = (c: { req: { path: string } }, code: 'unauthorized' | 'not_found' | 'unprocessable', detail: string) => {
    const body = problemFor(code, detail, [], c.req.path);
    return new Response(JSON.stringify(body), { status: body.status, headers: { 'content-type': 'application/problem+json' } });
  };

  app.use('*', async (c, next) => {
    const token = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '')?.[1];
    if (token === undefined || !timingSafeEqual(Buffer.from(sha256(token), 'hex'), expected)) return problem(c, 'unauthorized', 'The sandbox controls need the admin token.');
    await next();
    return undefined;
  });

  const clusterOr404 = (c: Context, id: string) => options.clusters.get(id) ?? problem(c, 'not_found', `No sandbox cluster '${id}' is running.`);
  const machineAction = (action: (instanceId: string) => void) => (c: Context) => {
    const { id = '', instanceId = '' } = c.req.param();
    const cluster = clusterOr404(c, id);
    if (cluster instanceof Response) return cluster;
    if (!options.machines.instancesOfCluster(id).some((instance) => instance.instanceId === instanceId)) {
      return problem(c, 'not_found', `Cluster '${id}' has no machine '${instanceId}'.`);
    }
    action(instanceId);
    return c.json({ clusterId: id, instanceId, machines: options.machines.instancesOfCluster(id) });
  };

  // A tenant's AWS account: the role an order's account.roleArn names, with the trust policy GET /v1/account-trust gives.
  app.post('/account-roles', async (c) => {
    const body = (await c.req.json().catch(() => ({}))) as { roleArn?: unknown; assumeRolePolicyDocument?: unknown };
    const roleArn = typeof body.roleArn === 'string' && accountOfRole(body.roleArn) !== undefined ? body.roleArn : undefined;
    const trust = typeof body.assumeRolePolicyDocument === 'string' ? roleTrustOf(body.assumeRolePolicyDocument) : undefined;
    if (roleArn === undefined || trust === undefined) {
      return problem(c, 'unprocessable', 'Give roleArn (an IAM role ARN) and assumeRolePolicyDocument (the trustPolicy GET /v1/account-trust answers).');
    }
    options.sts.trust(roleArn, trust);
    return c.json({ roleArn, ...trust }, 201);
  });

  app.get('/clusters/:id/machines', (c) => {
    const id = c.req.param('id');
    const cluster = clusterOr404(c, id);
    return cluster instanceof Response ? cluster : c.json({ items: options.machines.instancesOfCluster(id) });
  });
  app.post('/clusters/:id/machines/:instanceId/stop-kubelet', machineAction((instanceId) => { options.machines.stopKubelet(instanceId); }));
  app.post('/clusters/:id/machines/:instanceId/start-kubelet', machineAction((instanceId) => { options.machines.startKubelet(instanceId); }));
  app.post('/clusters/:id/machines/:instanceId/power-off', machineAction((instanceId) => { options.machines.powerOff(instanceId); }));
  app.post('/clusters/:id/machines/:instanceId/power-on', machineAction((instanceId) => { options.machines.powerOn(instanceId); }));
  app.post('/clusters/:id/machines/:instanceId/break', machineAction((instanceId) => { options.machines.breakMachine(instanceId); }));
  const apiServer = (down: boolean) => (c: Context) => {
    const id = c.req.param('id') ?? '';
    const cluster = clusterOr404(c, id);
    if (cluster instanceof Response) return cluster;
    cluster.faults.apiDown = down;
    return c.json({ clusterId: id, apiServerReachable: !down });
  };
  app.post('/clusters/:id/api-server/unreachable', apiServer(true));
  app.post('/clusters/:id/api-server/reachable', apiServer(false));
  app.notFound((c) => problem(c, 'not_found', `No sandbox control ${c.req.method} ${c.req.path}.`));
  return app;
}
