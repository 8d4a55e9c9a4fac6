// One Lambda instance for `npm run bench`: a process of its own that loads a bundled handler (argv[2]) as Lambda's
// runtime does and invokes it with API Gateway REST API (Lambda proxy, payload 1.0) events, as sst.config.ts's REST API sends them, one request at a time, as a warm
// instance is invoked. The parent sends batches of requests over IPC and gets back each one's status and time,
// and the CPU the process spent on the batch (everything the handler did: parsing, SDK calls, logging).
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';

export interface BenchRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

export interface BatchResult {
  statuses: number[];
  /** Milliseconds from invocation to the handler's answer, per request. */
  latencies: number[];
  /** Microseconds of CPU (user and system) the process spent on the whole batch. */
  cpuMicros: number;
  /** The first answer that was not the expected status, for the report. */
  unexpected?: string;
  /** Answer bodies, when asked for (to learn the ids created). */
  bodies?: string[];
}

type Handler = (event: unknown, context: unknown) => Promise<{ statusCode?: number; body?: string }>;

function lambdaEvent(request: BenchRequest): unknown {
  const [path = '/', query = ''] = request.path.split('?');
  const parameters = [...new URLSearchParams(query)];
  const headers = { host: 'api.kiln.bench', 'user-agent': 'kiln-bench', ...request.headers };
  return {
    resource: '/{proxy+}',
    path,
    httpMethod: request.method,
    headers,
    multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, [value]])),
    queryStringParameters: parameters.length === 0 ? null : Object.fromEntries(parameters),
    multiValueQueryStringParameters:
      parameters.length === 0 ? null : Object.fromEntries(parameters.map(([name]) => [name, parameters.filter(([other]) => other === name).map(([, value]) => value)])),
    pathParameters: { proxy: path.slice(1) },
    stageVariables: null,
    requestContext: {
      accountId: '000000000000',
      apiId: 'bench',
      domainName: 'api.kiln.bench',
      httpMethod: request.method,
      identity: { sourceIp: '127.0.0.1', userAgent: 'kiln-bench' },
      path: `/bench${path}`,
      protocol: 'HTTP/1.1',
      requestId: randomUUID(),
      requestTimeEpoch: Date.now(),
      resourcePath: '/{proxy+}',
      stage: 'bench',
    },
    body: request.body ?? null,
    isBase64Encoded: false,
  };
}

function lambdaContext(): unknown {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: 'kiln-bench-api',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:kiln-bench-api',
    memoryLimitInMB: '1024',
    awsRequestId: randomUUID(),
    logGroupName: '/aws/lambda/kiln-bench-api',
    logStreamName: 'bench',
    getRemainingTimeInMillis: () => 30_000,
  };
}

const bundle = process.argv[2];
if (bundle === undefined) throw new Error('usage: lambda-runner <bundled handler>');
const { handler } = (await import(pathToFileURL(bundle).href)) as { handler: Handler };

process.on('message', (message: { requests: BenchRequest[]; expect: number; keepBodies?: boolean } | { exit: true }) => {
  // Exits on its own (not killed), so a CPU profile asked for is written.
  if ('exit' in message) process.exit(0);
  void (async () => {
    const result: BatchResult = { statuses: [], latencies: [], cpuMicros: 0, ...(message.keepBodies === true ? { bodies: [] } : {}) };
    const cpu = process.cpuUsage();
    for (const request of message.requests) {
      const event = lambdaEvent(request);
      const started = performance.now();
      const answer = await handler(event, lambdaContext());
      result.latencies.push(performance.now() - started);
      const status = answer.statusCode ?? 0;
      result.statuses.push(status);
      result.bodies?.push(answer.body ?? '');
      if (status !== message.expect) result.unexpected ??= `${request.method} ${request.path}: ${String(status)} ${(answer.body ?? '').slice(0, 300)}`;
    }
    const spent = process.cpuUsage(cpu);
    result.cpuMicros = spent.user + spent.system;
    process.send?.(result);
  })();
});
process.send?.({ ready: true });
