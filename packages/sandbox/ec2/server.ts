import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AwsServiceError, callerOf, listenLocally, readBody } from '../aws-json.ts';
import type { AwsScope, SandboxIam } from '../iam.ts';
import type { SandboxInstance, SandboxMachines } from '../machines.ts';

/**
 * EC2 and Auto Scaling as their SDK clients speak to them (the Query
 * protocols: a form-encoded POST, an XML answer), for the calls Kiln makes:
 * DescribeAutoScalingGroups, UpdateAutoScalingGroup, TerminateInstanceInAutoScalingGroup, DescribeInstances and RebootInstances. One endpoint serves both,
 * told apart by `Action`; every answer is scoped to the caller's account and
 * region, as AWS's are.
 */
export interface Ec2Service {
  /** Give it to `new EC2Client({ endpoint })` and `new AutoScalingClient({ endpoint })`. */
  endpoint: string;
  close(): Promise<void>;
}

function xml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** `Name.member.1=a&Name.member.2=b` (Query) or `Name.1=a` (EC2 Query) as a list. */
function listParameter(form: URLSearchParams, name: string): string[] {
  return [...form.entries()]
    .filter(([key]) => key === name || new RegExp(`^${name}(\\.member)?\\.\\d+$`).test(key))
    .map(([, value]) => value);
}

const EC2_STATE_CODES: Record<SandboxInstance['state'], number> = { pending: 0, running: 16, 'shutting-down': 32, terminated: 48, stopping: 64, stopped: 80 };

function describeAutoScalingGroups(machines: SandboxMachines, scope: AwsScope, form: URLSearchParams): string {
  const names = listParameter(form, 'AutoScalingGroupNames');
  const instances = machines.instancesOfGroups(scope, names);
  const groups = names
    .flatMap((name) => {
      const capacity = machines.capacityOf(scope, name);
      if (capacity === undefined) return [];
      const members = instances.filter((instance) => instance.autoScalingGroup === name);
      const memberXml = members
        .map(
          (instance) =>
            `<member><InstanceId>${xml(instance.instanceId)}</InstanceId><AvailabilityZone>${xml(instance.zone)}</AvailabilityZone>` +
            `<LifecycleState>${instance.state === 'running' ? 'InService' : 'Pending'}</LifecycleState><HealthStatus>Healthy</HealthStatus>` +
            '<ProtectedFromScaleIn>false</ProtectedFromScaleIn></member>',
        )
        .join('');
      return [
        `<member><AutoScalingGroupName>${xml(name)}</AutoScalingGroupName><MinSize>${capacity.min}</MinSize><MaxSize>${capacity.max}</MaxSize><DesiredCapacity>${capacity.desired}</DesiredCapacity><Instances>${memberXml}</Instances></member>`,
      ];
    })
    .join('');
  return (
    '<DescribeAutoScalingGroupsResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">' +
    `<DescribeAutoScalingGroupsResult><AutoScalingGroups>${groups}</AutoScalingGroups></DescribeAutoScalingGroupsResult>` +
    `<ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></DescribeAutoScalingGroupsResponse>`
  );
}

function describeInstances(machines: SandboxMachines, scope: AwsScope, form: URLSearchParams): string {
  const ids = listParameter(form, 'InstanceId');
  const found = machines.describeInstances(scope, ids);
  const missing = ids.filter((id) => !found.some((instance) => instance.instanceId === id));
  if (missing.length > 0) throw new AwsServiceError('InvalidInstanceID.NotFound', `The instance IDs '${missing.join(', ')}' do not exist`);
  const items = found
    .map(
      (instance) =>
        `<item><reservationId>r-${instance.instanceId.slice(2)}</reservationId><instancesSet><item><instanceId>${xml(instance.instanceId)}</instanceId><instanceType>${xml(instance.instanceType)}</instanceType>` +
        `<instanceState><code>${EC2_STATE_CODES[instance.state]}</code><name>${instance.state}</name></instanceState>` +
        `<launchTime>${instance.launchedAt.toISOString()}</launchTime><placement><availabilityZone>${xml(instance.zone)}</availabilityZone></placement>` +
        // A terminated instance has no address any more; a stopped one keeps its own.
        (instance.state === 'terminated' ? '' : `<privateIpAddress>${xml(instance.privateIp)}</privateIpAddress>`) +
        '</item></instancesSet></item>',
    )
    .join('');
  return `<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>${randomUUID()}</requestId><reservationSet>${items}</reservationSet></DescribeInstancesResponse>`;
}

function rebootInstances(machines: SandboxMachines, scope: AwsScope, form: URLSearchParams): string {
  const ids = listParameter(form, 'InstanceId');
  const outcomes = ids.map((id) => [id, machines.reboot(scope, id)] as const);
  const missing = outcomes.filter(([, outcome]) => outcome === 'missing').map(([id]) => id);
  if (missing.length > 0) throw new AwsServiceError('InvalidInstanceID.NotFound', `The instance IDs '${missing.join(', ')}' do not exist`);
  const stopped = outcomes.find(([, outcome]) => outcome === 'not-running');
  if (stopped !== undefined) throw new AwsServiceError('IncorrectInstanceState', `The instance '${stopped[0]}' is not in a state from which it can be rebooted.`);
  return `<RebootInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>${randomUUID()}</requestId><return>true</return></RebootInstancesResponse>`;
}

function terminateInstanceInAutoScalingGroup(machines: SandboxMachines, scope: AwsScope, form: URLSearchParams): string {
  const id = form.get('InstanceId') ?? '';
  const decrement = form.get('ShouldDecrementDesiredCapacity');
  if (decrement !== 'true' && decrement !== 'false') throw new AwsServiceError('ValidationError', 'ShouldDecrementDesiredCapacity is required.');
  const instance = machines.terminateInGroup(scope, id, decrement === 'true');
  if (instance === undefined) throw new AwsServiceError('ValidationError', `Instance Id not found - No managed instance found for instance ID: ${id}`);
  if ('refused' in instance) throw new AwsServiceError('ValidationError', instance.refused);
  const cause = decrement === 'true' ? 'shrinking the capacity from' : 'maintaining the capacity at';
  return (
    '<TerminateInstanceInAutoScalingGroupResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><TerminateInstanceInAutoScalingGroupResult><Activity>' +
    `<ActivityId>${randomUUID()}</ActivityId><AutoScalingGroupName>${xml(instance.autoScalingGroup)}</AutoScalingGroupName>` +
    `<Description>Terminating EC2 instance: ${xml(id)}</Description><Cause>An instance was taken out of service in response to a user request, ${cause} the desired capacity.</Cause>` +
    `<StartTime>${new Date().toISOString()}</StartTime><StatusCode>InProgress</StatusCode><Progress>0</Progress></Activity></TerminateInstanceInAutoScalingGroupResult>` +
    `<ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></TerminateInstanceInAutoScalingGroupResponse>`
  );
}

function sizeParameter(form: URLSearchParams, name: string): number | undefined {
  const value = form.get(name);
  if (value === null) return undefined;
  if (!/^\d+$/.test(value)) throw new AwsServiceError('ValidationError', `${name} must be a non-negative integer.`);
  return Number(value);
}

function updateAutoScalingGroup(machines: SandboxMachines, scope: AwsScope, form: URLSearchParams): string {
  const name = form.get('AutoScalingGroupName') ?? '';
  const min = sizeParameter(form, 'MinSize');
  const max = sizeParameter(form, 'MaxSize');
  const desired = sizeParameter(form, 'DesiredCapacity');
  const change = machines.updateGroup(scope, name, { ...(min === undefined ? {} : { min }), ...(max === undefined ? {} : { max }), ...(desired === undefined ? {} : { desired }) });
  if (!change.ok) throw new AwsServiceError('ValidationError', change.message);
  return `<UpdateAutoScalingGroupResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></UpdateAutoScalingGroupResponse>`;
}

function fail(response: ServerResponse, action: string, error: AwsServiceError): void {
  // EC2 answers `<Response><Errors>`, the other Query services `<ErrorResponse><Error>`.
  const body =
    action === 'DescribeInstances' || action === 'RebootInstances'
      ? `<Response><Errors><Error><Code>${xml(error.type)}</Code><Message>${xml(error.message)}</Message></Error></Errors><RequestID>${randomUUID()}</RequestID></Response>`
      : `<ErrorResponse><Error><Type>Sender</Type><Code>${xml(error.type)}</Code><Message>${xml(error.message)}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`;
  response.writeHead(error.status, { 'content-type': 'text/xml' });
  response.end(body);
}

export async function startEc2Service(options: { machines: SandboxMachines; iam: SandboxIam; port?: number }): Promise<Ec2Service> {
  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const form = new URLSearchParams((await readBody(request)).toString('utf8'));
    const action = form.get('Action') ?? '';
    try {
      const scope = options.iam.scopeOf(callerOf(request.headers.authorization));
      const body =
        action === 'DescribeAutoScalingGroups'
          ? describeAutoScalingGroups(options.machines, scope, form)
          : action === 'DescribeInstances'
            ? describeInstances(options.machines, scope, form)
            : action === 'RebootInstances'
              ? rebootInstances(options.machines, scope, form)
              : action === 'TerminateInstanceInAutoScalingGroup'
                ? terminateInstanceInAutoScalingGroup(options.machines, scope, form)
                : action === 'UpdateAutoScalingGroup'
                  ? updateAutoScalingGroup(options.machines, scope, form)
                  : undefined;
      if (body === undefined) throw new AwsServiceError('InvalidAction', `The action ${action} is not valid for this web service.`);
      response.writeHead(200, { 'content-type': 'text/xml' });
      response.end(body);
    } catch (error) {
      fail(response, action, error instanceof AwsServiceError ? error : new AwsServiceError('InternalFailure', 'Internal failure.', 500));
    }
  };
  return listenLocally((request, response) => {
    void handle(request, response);
  }, options);
}
