import { type Json, type JsonObject, isObject } from './json.ts';

/**
 * The Tetragon agent's enforcement of TracingPolicies, as cilium/tetragon@v1.7.0 does it (the pinned 1.7.1 is the v1.7
 * branch plus release fixes; none of them touch selectors): loading a policy under its limits, then, at each kernel
 * call a task makes, the first matching selector of each hook on that call, and its actions. Only what runc's init
 * reaches is played (runtime-security.ts); a policy that hooks anything else, or filters on something the sandbox does
 * not model, is reported as such rather than guessed at.
 */

/** Tetragon's namespace kinds (pkg/k8s/apis/cilium.io/v1alpha1/types.go NamespaceSelector). */
export const NAMESPACE_KINDS = ['Uts', 'Ipc', 'Mnt', 'Pid', 'PidForChildren', 'Net', 'Time', 'TimeForChildren', 'Cgroup', 'User'] as const;
export type NamespaceKind = (typeof NAMESPACE_KINDS)[number];

/** The host's namespaces are `host` (what `host_ns` resolves to); a container's are named after the container. */
export type NamespaceId = string;
export const HOST_NAMESPACE: NamespaceId = 'host';

/** Credentials as the kernel holds them (task->cred): ids in the initial user namespace (kuid/kgid). */
export interface TaskCredentials {
  uid: number;
  euid: number;
  gid: number;
  egid: number;
  /** cred->user_ns->level: 0 in the initial user namespace, where uid 0 is the host's root. */
  userNamespaceLevel: number;
}

/** A task as Tetragon sees it when one of its hooks fires. */
export interface TracedTask {
  /**
   * `process.binary`: the path of the task's executable as Tetragon reads it on kernels with large BPF programs (d_path
   * of mm->exe_file, bpf/lib/process.h read_exe), not the name it was started with.
   */
  binary: string;
  /**
   * Tetragon's namespaces of the task (bpf/process/bpf_process_event.h get_namespaces): Pid is the task's active PID
   * namespace, User the one of its mm (fixed at exec), not of its credentials.
   */
  namespaces: Readonly<Record<NamespaceKind, NamespaceId>>;
  cred: TaskCredentials;
  /** Effective capabilities, as `CAP_SETUID` etc. */
  capabilities: readonly string[];
}

/** One kernel function a task passes through: a syscall by its `sys_` name (a policy's `syscall: true` hook), else the function. */
export interface KernelCall {
  call: string;
  syscall: boolean;
  /** Arguments by their index in the function: numbers for integer arguments, a path for a file or binprm argument. */
  args: readonly (number | string)[];
}

export type TetragonAction = 'Sigkill' | 'Override' | 'Signal' | 'Post' | 'NoPost';

/** What Tetragon did to a task at a call: which policy, hook and selector matched, and the action that touches the task. */
export interface Enforcement {
  policy: string;
  call: string;
  selector: number;
  action: 'Sigkill' | 'Override' | 'Signal';
  signal?: number;
}

/** A hook whose effect on runc's init the sandbox cannot tell, and why: a container start under it fails rather than passing unchecked. */
export interface Unplayed {
  policy: string;
  reason: string;
}

interface Hook {
  call: string;
  syscall: boolean;
  args: JsonObject[];
  data: JsonObject[];
  selectors: JsonObject[];
}

export interface LoadedPolicy {
  name: string;
  hooks: Hook[];
}

export type PolicyLoad = { loaded: LoadedPolicy } | { name: string; error: string };

/** The limits `tetragon` checks when it loads a policy (pkg/selectors/kernel.go, pkg/sensors/tracing/generickprobe.go). */
const MAX_SELECTORS = 5;
const MAX_ARGS_AND_DATA = 5;
const MAX_MATCH_ARGS_AND_DATA = 5;
const MAX_MATCH_VALUES = 4;
const MAX_NAMESPACE_VALUES = 4;

const SELECTOR_FIELDS = ['matchArgs', 'matchData', 'matchNamespaces', 'matchBinaries', 'matchCapabilities', 'matchActions'];

/** A scalar field as the loader reads it; anything else as empty. */
function text(value: Json | undefined): string {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? String(value) : '';
}

function arrayAt(object: JsonObject, key: string): JsonObject[] {
  const value = object[key];
  return Array.isArray(value) ? value.filter(isObject) : [];
}

function stringsAt(object: JsonObject, key: string): string[] {
  const value = object[key];
  return Array.isArray(value) ? value.map(text) : [];
}

/** Why Tetragon refuses this hook, as its loader says it; undefined when it loads. */
function loadError(hook: Hook): string | undefined {
  if (hook.selectors.length > MAX_SELECTORS) return `no more than ${MAX_SELECTORS} selectors supported (${hook.selectors.length} provided)`;
  if (hook.args.length + hook.data.length > MAX_ARGS_AND_DATA) return `too many arguments, max ${MAX_ARGS_AND_DATA}: args(${hook.args.length}) data(${hook.data.length})`;
  for (const arg of hook.args) if (Number(arg.index) > 4) return `error add arg: ArgType ${text(arg.type)} Index ${text(arg.index)} out of bounds`;
  for (const data of hook.data) if (data.source !== 'current_task') return `data argument has wrong source '${text(data.source)}'`;
  for (const selector of hook.selectors) {
    const filters = arrayAt(selector, 'matchArgs').length + arrayAt(selector, 'matchData').length;
    if (filters > MAX_MATCH_ARGS_AND_DATA) return `parseMatchArgs: supports up to ${MAX_MATCH_ARGS_AND_DATA} filters (${filters} provided)`;
    // pkg/selectors/kernel.go argIndexType, dataIndexType: matchArgs names an argument by its index in the function,
    // matchData a data field by its position in the hook's data list.
    for (const filter of arrayAt(selector, 'matchArgs')) {
      if (!Array.isArray(filter.args) && !hook.args.some((arg) => Number(arg.index) === Number(filter.index))) return 'argFilter for unknown index';
    }
    for (const filter of arrayAt(selector, 'matchData')) {
      if (Number(filter.index) >= hook.data.length) return `matchData index out of bonds (0,${hook.data.length})`;
    }
    for (const filter of [...arrayAt(selector, 'matchArgs'), ...arrayAt(selector, 'matchData')]) {
      const values = stringsAt(filter, 'values');
      if (['Equal', 'NotEqual', 'InRange', 'NotInRange'].includes(text(filter.operator)) && values.length > MAX_MATCH_VALUES) {
        return `selector does not support more than ${MAX_MATCH_VALUES} values: consider using InMap or NotInMap operators`;
      }
    }
    for (const namespace of arrayAt(selector, 'matchNamespaces')) {
      const values = stringsAt(namespace, 'values');
      if (values.length > MAX_NAMESPACE_VALUES) return `matchNamespace supports up to ${MAX_NAMESPACE_VALUES} values per filter (current number of values is ${values.length})`;
      const bad = values.find((value) => value !== 'host_ns' && !/^\d+$/.test(value));
      if (bad !== undefined) return `values for matchNamespace can only be numeric or "host_ns". (${bad})`;
    }
    // The CRD allows one matchBinaries entry per selector (MaxItems=1).
    if (arrayAt(selector, 'matchBinaries').length > 1) return 'spec.kprobes.selectors.matchBinaries: Too many: must have at most 1 items';
  }
  return undefined;
}

/** The agent loading one stored TracingPolicy: its kprobes, or the error that keeps it from enforcing anything. */
export function loadTracingPolicy(object: JsonObject): PolicyLoad {
  const name = isObject(object.metadata) && typeof object.metadata.name === 'string' ? object.metadata.name : '';
  const spec = isObject(object.spec) ? object.spec : {};
  const hooks: Hook[] = arrayAt(spec, 'kprobes').map((kprobe) => ({
    call: text(kprobe.call),
    syscall: kprobe.syscall === true,
    args: arrayAt(kprobe, 'args'),
    data: arrayAt(kprobe, 'data'),
    selectors: arrayAt(kprobe, 'selectors'),
  }));
  for (const hook of hooks) {
    const error = loadError(hook);
    if (error !== undefined) return { name, error: `${hook.call}: ${error}` };
  }
  return { loaded: { name, hooks } };
}

/** `sys_setuid`, `__x64_sys_setuid` and `__arm64_sys_setuid` are one syscall hook. */
function syscallName(call: string): string {
  return call.replace(/^__(x64|arm64|ia32)_/, '');
}

function hookCovers(hook: Hook, call: KernelCall): boolean {
  return hook.syscall === call.syscall && (call.syscall ? syscallName(hook.call) === call.call : hook.call === call.call);
}

/** A filter the sandbox does not evaluate: it says so instead of guessing. */
class NotModelled extends Error {}

/** strconv.ParseInt(v, 0, …) as the loader parses integer values: decimal, 0x hex, 0 octal. */
function parseInteger(value: string): number {
  const trimmed = value.trim();
  const negative = trimmed.startsWith('-');
  const digits = negative ? trimmed.slice(1) : trimmed;
  const parsed = /^0x/i.test(digits) ? Number.parseInt(digits.slice(2), 16) : /^0\d/.test(digits) ? Number.parseInt(digits.slice(1), 8) : Number(digits);
  if (!Number.isFinite(parsed)) throw new NotModelled(`value ${value} is not an integer`);
  return negative ? -parsed : parsed;
}

/** matchArgs/matchData operators (docs/content/en/docs/concepts/tracing-policy/selectors.md "Operator types"). */
function operatorMatches(operator: string, actual: number | string, values: readonly string[]): boolean {
  const asString = String(actual);
  const asNumber = () => {
    if (typeof actual !== 'number') throw new NotModelled(`${operator} on a path argument`);
    return actual;
  };
  const first = values[0] ?? '';
  switch (operator) {
    case 'Equal':
      return typeof actual === 'number' ? values.some((value) => parseInteger(value) === actual) : values.includes(asString);
    case 'NotEqual':
      return typeof actual === 'number' ? values.every((value) => parseInteger(value) !== actual) : !values.includes(asString);
    case 'GT':
    case 'GreaterThan':
      return asNumber() > parseInteger(first);
    case 'LT':
    case 'LessThan':
      return asNumber() < parseInteger(first);
    case 'Mask':
      return values.some((value) => (asNumber() & parseInteger(value)) !== 0);
    case 'Prefix':
      return values.some((value) => asString.startsWith(value));
    case 'NotPrefix':
      return values.every((value) => !asString.startsWith(value));
    case 'Postfix':
      return values.some((value) => asString.endsWith(value));
    case 'NotPostfix':
      return values.every((value) => !asString.endsWith(value));
    default:
      throw new NotModelled(`operator ${operator}`);
  }
}

/** What a hook's `args` entry reads from the call: the raw argument, or its path for file and binprm arguments. */
function argumentValue(spec: JsonObject, call: KernelCall): number | string {
  const resolve = typeof spec.resolve === 'string' ? spec.resolve : '';
  if (resolve !== '' && !(resolve === 'file' && spec.type === 'file')) throw new NotModelled(`argument resolve ${resolve}`);
  const value = call.args[Number(spec.index)];
  if (value === undefined) throw new NotModelled(`argument ${text(spec.index)} of ${call.call}`);
  return value;
}

/** `data` from `current_task` (docs/content/en/docs/concepts/tracing-policy/hooks.md "Data"): the task's credentials. */
function currentTaskValue(spec: JsonObject, task: TracedTask): number {
  const resolve = text(spec.resolve);
  if (/^(?:real_)?cred\.user_ns\.level$/.test(resolve)) return task.cred.userNamespaceLevel;
  const match = /^(?:real_)?cred\.(uid|euid|gid|egid)\.val$/.exec(resolve);
  const field = match?.[1];
  if (field !== 'uid' && field !== 'euid' && field !== 'gid' && field !== 'egid') throw new NotModelled(`data resolve ${resolve}`);
  return task.cred[field];
}

/** Each filter of one selector; all must match (AND), per selectors.md. */
function selectorMatches(selector: JsonObject, hook: Hook, task: TracedTask, call: KernelCall): boolean {
  const unknown = Object.keys(selector).find((key) => !SELECTOR_FIELDS.includes(key));
  if (unknown !== undefined) throw new NotModelled(`selector filter ${unknown}`);
  for (const filter of arrayAt(selector, 'matchArgs')) {
    const position = Array.isArray(filter.args) ? Number(filter.args[0]) : undefined;
    const spec = position === undefined ? hook.args.find((arg) => Number(arg.index) === Number(filter.index)) : hook.args[position];
    if (spec === undefined) throw new NotModelled(`matchArgs index ${text(filter.index)} names no argument of the hook`);
    if (!operatorMatches(text(filter.operator), argumentValue(spec, call), stringsAt(filter, 'values'))) return false;
  }
  for (const filter of arrayAt(selector, 'matchData')) {
    const spec = hook.data[Number(filter.index)];
    if (spec === undefined) throw new NotModelled(`matchData index ${text(filter.index)} names no data field of the hook`);
    if (!operatorMatches(text(filter.operator), currentTaskValue(spec, task), stringsAt(filter, 'values'))) return false;
  }
  // pfilter.h process_filter_namespace: In needs one of the values, NotIn none of them; host_ns is the host's inode.
  for (const filter of arrayAt(selector, 'matchNamespaces')) {
    const kind = text(filter.namespace) as NamespaceKind;
    if (!NAMESPACE_KINDS.includes(kind)) throw new NotModelled(`namespace ${kind}`);
    // An inode number names a namespace the sandbox cannot know; only the host's has a name here.
    const anyEqual = stringsAt(filter, 'values').some((value) => value === 'host_ns' && task.namespaces[kind] === HOST_NAMESPACE);
    if ((filter.operator === 'In') !== anyEqual) return false;
  }
  for (const filter of arrayAt(selector, 'matchBinaries')) {
    const values = stringsAt(filter, 'values');
    const operator = text(filter.operator);
    const binary = task.binary;
    const matched =
      operator === 'In' ? values.includes(binary)
      : operator === 'NotIn' ? !values.includes(binary)
      : operatorMatches(operator, binary, values);
    if (!matched) return false;
  }
  for (const filter of arrayAt(selector, 'matchCapabilities')) {
    if (filter.type !== undefined && filter.type !== 'Effective' && filter.type !== 'Permitted') throw new NotModelled(`capability set ${text(filter.type)}`);
    const held = stringsAt(filter, 'values').some((capability) => task.capabilities.includes(capability));
    if ((filter.operator === 'In') !== held) return false;
  }
  return true;
}

/**
 * What the loaded policies do to `task` at `call`. Each hook on the call applies the actions of its first matching
 * selector only ("short-circuited OR", selectors.md); a selector with no action posts an event. The first action that
 * touches the task is returned: Sigkill kills it, Override fails the call, Signal sends it a signal.
 */
export function enforce(policies: readonly LoadedPolicy[], task: TracedTask, call: KernelCall): Enforcement | Unplayed | undefined {
  for (const policy of policies) {
    for (const hook of policy.hooks) {
      if (!hookCovers(hook, call)) continue;
      try {
        const index = hook.selectors.findIndex((selector) => selectorMatches(selector, hook, task, call));
        const selector = hook.selectors[index];
        if (selector === undefined) continue;
        for (const action of arrayAt(selector, 'matchActions')) {
          const name = text(action.action);
          if (name === 'Sigkill' || name === 'Override') return { policy: policy.name, call: hook.call, selector: index, action: name };
          if (name === 'Signal') return { policy: policy.name, call: hook.call, selector: index, action: 'Signal', signal: Number(action.argSig ?? 0) };
        }
      } catch (error) {
        if (error instanceof NotModelled) return { policy: policy.name, reason: `the sandbox does not evaluate ${error.message} (hook ${hook.call})` };
        throw error;
      }
    }
  }
  return undefined;
}

/** Hooks of the policies on calls the sandbox does not play: their effect on a task the sandbox cannot tell. */
export function unplayedHooks(policies: readonly LoadedPolicy[], played: (hook: { call: string; syscall: boolean }) => boolean): Unplayed[] {
  return policies.flatMap((policy) =>
    policy.hooks.filter((hook) => !played({ call: hook.syscall ? syscallName(hook.call) : hook.call, syscall: hook.syscall })).map((hook) => ({ policy: policy.name, reason: `the sandbox does not play ${hook.call} in runc's init` })),
  );
}
