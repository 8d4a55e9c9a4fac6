import { request } from 'node:https';

/**
 * Asks the API server for /readyz every 200 ms, as a client behind the load balancer would: any HTTP answer (401
 * without a client certificate) means it is reachable, a dropped or refused connection means it is not.
 */
export function pollApiServer(endpoint: string): { stop: () => Promise<{ reached: number; unreachable: string[] }> } {
  const state = { stopped: false, reached: 0, unreachable: [] as string[] };
  const once = () =>
    new Promise<void>((resolve) => {
      const call = request(`${endpoint}/readyz`, { rejectUnauthorized: false, timeout: 2000 }, (response) => {
        response.resume();
        state.reached += 1;
        resolve();
      });
      call.on('timeout', () => call.destroy(new Error('timed out')));
      call.on('error', (error) => {
        state.unreachable.push(`${new Date().toISOString()} ${error.message}`);
        resolve();
      });
      call.end();
    });
  const loop = (async () => {
    while (!state.stopped) await Promise.all([once(), new Promise((resolve) => setTimeout(resolve, 200))]);
  })();
  return {
    stop: async () => {
      state.stopped = true;
      await loop;
      return { reached: state.reached, unreachable: state.unreachable };
    },
  };
}
