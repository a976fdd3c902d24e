/**
 * Runs a *synthesized* state machine (subscription or reconcile) in-process with aws-local-stepfunctions: the
 * definition comes from the CloudFormation template exactly as deployed, and each Task state runs the
 * task handler of the function it names. Used by the tests and the local `subscribe` command.
 */
import './promise-polyfill';
import { StateMachine } from 'aws-local-stepfunctions';

type Json = Record<string, unknown>;
export type TaskHandler = (event: never) => Promise<unknown>;

export interface CfnTemplate {
  Resources: Record<string, { Type: string; Properties?: Json }>;
}

const FAKE_ARN = (logicalId: string) => `arn:aws:lambda:us-east-1:123456789012:function:${logicalId}`;

/** Logical-id parts of the stack's two state machines. */
export const STATE_MACHINES = {
  subscription: 'SubscriptionWorkflowStateMachine',
  reconcile: 'ReconcileStateMachine',
} as const;

/**
 * A state machine definition of a template (by a part of its logical id), with function ARNs resolved to
 * stand-ins named after their logical ids.
 */
export function definitionFromTemplate(template: CfnTemplate, which: string = STATE_MACHINES.subscription): Json {
  const machines = Object.entries(template.Resources).filter(
    ([id, r]) => r.Type === 'AWS::StepFunctions::StateMachine' && id.includes(which),
  );
  if (machines.length !== 1)
    throw new Error(`expected one ${which} state machine in the template, found ${machines.length}`);
  return JSON.parse(resolve(machines[0][1].Properties?.DefinitionString));
}

function resolve(value: unknown): string {
  if (typeof value === 'string') return value;
  const v = value as Json;
  if (Array.isArray(v?.['Fn::Join'])) {
    const [sep, parts] = v['Fn::Join'] as [string, unknown[]];
    return parts.map(resolve).join(sep);
  }
  if (Array.isArray(v?.['Fn::GetAtt'])) {
    const [logicalId, attribute] = v['Fn::GetAtt'] as [string, string];
    if (attribute === 'Arn') return FAKE_ARN(logicalId);
  }
  if (v?.Ref === 'AWS::Partition') return 'aws';
  if (v?.Ref === 'AWS::Region') return 'us-east-1';
  if (v?.Ref === 'AWS::AccountId') return '123456789012';
  throw new Error(`cannot resolve ${JSON.stringify(value)} in the state machine definition`);
}

/** Every state by name, nested ones (Map item processors, Parallel branches) included. */
export function allStates(definition: Json): Map<string, Json> {
  const found = new Map<string, Json>();
  const walk = (states: Record<string, Json>) => {
    for (const [name, state] of Object.entries(states)) {
      found.set(name, state);
      const processor = (state.ItemProcessor ?? state.Iterator) as Json | undefined;
      if (processor?.States) walk(processor.States as Record<string, Json>);
      for (const branch of (state.Branches as Json[] | undefined) ?? []) walk(branch.States as Record<string, Json>);
    }
  };
  walk(definition.States as Record<string, Json>);
  return found;
}

/** Every Task state (nested ones included) with the Resource it calls. */
export function taskStates(definition: Json): Map<string, string> {
  const tasks = [...allStates(definition)].filter(([, state]) => state.Type === 'Task');
  return new Map(tasks.map(([name, state]) => [name, String(state.Resource)]));
}

export interface LocalRunOptions {
  readonly definition: Json;
  readonly input: unknown;
  /** Handlers by a pattern of the function's logical id, e.g. { PlanFunction: planHandler }. */
  readonly handlers: Record<string, TaskHandler>;
  readonly executionName: string;
  /** Milliseconds to wait in every Wait state instead of the seconds it asks for. @default as defined */
  readonly waitMs?: number;
  /** Milliseconds between Retry attempts instead of the defined backoff. @default as defined */
  readonly retryMs?: number;
  /** Called for every execution event (for progress output). */
  readonly onEvent?: (event: Json) => void;
}

export interface LocalRunResult {
  readonly output: unknown;
  /** Every event the execution logged, in order. */
  readonly events: Json[];
}

export const LOCAL_STATE_MACHINE_NAME = 'SmartcarSubscriptions';

export function executionArnOf(executionName: string): string {
  return `arn:aws:states:us-east-1:123456789012:execution:${LOCAL_STATE_MACHINE_NAME}:${executionName}`;
}

const machines = new WeakMap<Json, StateMachine>();

/** Runs one execution to its end; rejects with the execution's error (name and message) when it fails. */
export async function runLocally(options: LocalRunOptions): Promise<LocalRunResult> {
  const tasks = taskStates(options.definition);
  const taskResourceLocalHandlers: Record<string, (input: unknown) => Promise<unknown>> = {};
  const retryIntervalOverrides: Record<string, number> = {};
  for (const [stateName, resource] of tasks) {
    const logicalId = resource.split(':').pop() ?? '';
    const entry = Object.entries(options.handlers).find(([pattern]) => logicalId.includes(pattern));
    if (!entry) throw new Error(`no local handler for task state "${stateName}" (${logicalId})`);
    const handler = entry[1] as (input: unknown) => Promise<unknown>;
    taskResourceLocalHandlers[stateName] = (input) => handler(input);
    if (options.retryMs !== undefined) retryIntervalOverrides[stateName] = options.retryMs;
  }
  const waitTimeOverrides: Record<string, number> = {};
  if (options.waitMs !== undefined) {
    for (const [name, state] of allStates(options.definition)) {
      if (state.Type === 'Wait') waitTimeOverrides[name] = options.waitMs;
    }
  }

  // Validating a definition takes about 100 ms; a definition is validated once and its machine reused.
  let machine = machines.get(options.definition);
  if (!machine) {
    machine = new StateMachine(options.definition as never, {
      validationOptions: { checkArn: true, checkPaths: true },
    });
    machines.set(options.definition, machine);
  }
  const execution = machine.run(options.input as never, {
    overrides: {
      taskResourceLocalHandlers: taskResourceLocalHandlers as never,
      waitTimeOverrides,
      retryIntervalOverrides,
    },
    context: {
      Execution: {
        Id: executionArnOf(options.executionName),
        Name: options.executionName,
        Input: options.input,
        StartTime: new Date().toISOString(),
      },
      StateMachine: {
        Id: `arn:aws:states:us-east-1:123456789012:stateMachine:${LOCAL_STATE_MACHINE_NAME}`,
        Name: LOCAL_STATE_MACHINE_NAME,
      },
    } as never,
  });
  const events: Json[] = [];
  const collecting = (async () => {
    for await (const event of execution.eventLogs as AsyncIterable<Json>) {
      events.push(event);
      options.onEvent?.(event);
    }
  })();
  try {
    const output = await execution.result;
    await collecting.catch(() => undefined);
    return { output, events };
  } catch (err) {
    await collecting.catch(() => undefined);
    throw new ExecutionFailed(err, events);
  }
}

/** The execution failed: `name` and `message` are the error and cause Step Functions would report. */
export class ExecutionFailed extends Error {
  constructor(
    err: unknown,
    readonly events: Json[],
  ) {
    const cause = (err as { cause?: unknown })?.cause ?? err;
    super(cause instanceof Error ? cause.message : String(cause));
    this.name = cause instanceof Error ? cause.name : 'States.Runtime';
  }
}
