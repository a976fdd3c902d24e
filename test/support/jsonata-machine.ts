/**
 * Runs a synthesized JSONata state machine in-process, for the states the stack's JSONata machines use
 * (Pass, Task, Choice, Wait, Parallel, Succeed, Fail; Assign, Arguments, Output, Catch). aws-local-stepfunctions
 * (3.0.0, the latest) runs JSONPath machines only. Expressions are evaluated by the `jsonata` library with
 * the functions Step Functions adds ($hash, $uuid, $parse); variables are scoped as in Step Functions (a
 * Parallel branch reads the outer ones, its assignments stay inside). Every Task calls `handler` with its
 * Resource and evaluated Arguments; a handler throws {@link StatesError} to fail it with an error name.
 */
import { createHash, randomUUID } from 'node:crypto';
import { setImmediate } from 'node:timers/promises';
import jsonata from 'jsonata';

// biome-ignore lint/suspicious/noExplicitAny: state machine definitions and payloads are arbitrary JSON.
type Json = any;

export class StatesError extends Error {
  constructor(
    readonly error: string,
    readonly cause = '',
  ) {
    super(cause);
    this.name = error;
  }
}

export interface TaskCall {
  readonly state: string;
  readonly resource: string;
  readonly args: Json;
  readonly executionName: string;
}

export interface JsonataRunOptions {
  readonly definition: Json;
  readonly input: Json;
  readonly executionName: string;
  readonly handler: (call: TaskCall) => Promise<Json>;
  /** @default now */
  readonly startTime?: string;
  /** The states entered, in order (for assertions). */
  readonly visited?: string[];
}

const ALGORITHMS: Record<string, string> = {
  MD5: 'md5',
  'SHA-1': 'sha1',
  'SHA-256': 'sha256',
  'SHA-384': 'sha384',
  'SHA-512': 'sha512',
};

async function evaluate(value: Json, vars: Record<string, Json>, states: Json): Promise<Json> {
  if (typeof value === 'string') {
    const m = /^\{%([\s\S]*)%\}$/.exec(value);
    if (!m) return value;
    const expr = jsonata(m[1]);
    expr.registerFunction('hash', (v: string, alg: string) =>
      createHash(ALGORITHMS[alg] ?? 'unknown')
        .update(String(v))
        .digest('hex'),
    );
    expr.registerFunction('uuid', () => randomUUID());
    expr.registerFunction('parse', (v: string) => JSON.parse(v));
    const result = await expr.evaluate({}, { ...vars, states });
    if (result === undefined) throw new StatesError('States.QueryEvaluationError', `${m[1].trim()} is undefined`);
    return result;
  }
  if (Array.isArray(value)) return Promise.all(value.map((v) => evaluate(v, vars, states)));
  if (value && typeof value === 'object') {
    const out: Record<string, Json> = {};
    for (const [k, v] of Object.entries(value)) out[k] = await evaluate(v, vars, states);
    return out;
  }
  return value;
}

async function assign(target: Record<string, Json>, spec: Json, vars: Record<string, Json>, states: Json) {
  if (!spec) return;
  // Every expression sees the variables as they were before the state: assignments apply together.
  const values = await evaluate(spec, vars, states);
  Object.assign(target, values);
}

function errorOf(err: unknown): { Error: string; Cause: string } {
  if (err instanceof StatesError) return { Error: err.error, Cause: err.cause };
  return { Error: 'States.TaskFailed', Cause: err instanceof Error ? err.message : String(err) };
}

async function runStates(
  machine: Json,
  input: Json,
  vars: Record<string, Json>,
  options: JsonataRunOptions,
  context: Json,
): Promise<Json> {
  let name: string = machine.StartAt;
  let data = input;
  for (let transitions = 0; transitions < 10_000; transitions++) {
    const state = machine.States[name];
    if (!state) throw new Error(`no state "${name}"`);
    options.visited?.push(name);
    const ctx = { ...context, State: { Name: name, EnteredTime: new Date().toISOString() } };
    const states = { input: data, context: ctx };
    let result: Json;
    let next: string | undefined = state.Next;
    try {
      switch (state.Type) {
        case 'Pass':
          await assign(vars, state.Assign, vars, states);
          data = state.Output !== undefined ? await evaluate(state.Output, vars, states) : data;
          break;
        case 'Wait':
          await setImmediate();
          break;
        case 'Choice': {
          next = state.Default;
          for (const choice of state.Choices) {
            if ((await evaluate(choice.Condition, vars, states)) === true) {
              next = choice.Next;
              break;
            }
          }
          if (!next) throw new StatesError('States.NoChoiceMatched', name);
          break;
        }
        case 'Succeed':
          return state.Output !== undefined ? evaluate(state.Output, vars, states) : data;
        case 'Fail':
          throw new StatesError(
            await evaluate(state.Error ?? 'States.Fail', vars, states),
            await evaluate(state.Cause ?? '', vars, states),
          );
        case 'Task': {
          const args = await evaluate(state.Arguments ?? {}, vars, states);
          result = await options.handler({
            state: name,
            resource: state.Resource,
            args,
            executionName: context.Execution.Name,
          });
          break;
        }
        case 'Parallel':
          result = await Promise.all(
            state.Branches.map((branch: Json) => runStates(branch, data, { ...vars }, options, context)),
          );
          break;
        default:
          throw new Error(`state type ${state.Type} is not supported here`);
      }
      if (state.Type === 'Task' || state.Type === 'Parallel') {
        const withResult = { ...states, result };
        await assign(vars, state.Assign, vars, withResult);
        data = state.Output !== undefined ? await evaluate(state.Output, vars, withResult) : result;
      }
    } catch (err) {
      const errorOutput = errorOf(err);
      const catcher = (state.Catch ?? []).find((c: Json) =>
        c.ErrorEquals.some((e: string) => e === 'States.ALL' || e === errorOutput.Error),
      );
      if (!catcher || state.Type === 'Fail')
        throw err instanceof StatesError ? err : new StatesError(errorOutput.Error, errorOutput.Cause);
      const withError = { ...states, errorOutput };
      await assign(vars, catcher.Assign, vars, withError);
      data = catcher.Output !== undefined ? await evaluate(catcher.Output, vars, withError) : errorOutput;
      next = catcher.Next;
    }
    if (state.End || !next) return data;
    name = next;
  }
  throw new Error('more than 10,000 transitions');
}

/** Runs one execution to its end: its output, or a rejection with a {@link StatesError} (error and cause). */
export async function runJsonataMachine(options: JsonataRunOptions): Promise<Json> {
  const context = {
    Execution: {
      Id: `arn:aws:states:us-east-1:123456789012:execution:Compaction:${options.executionName}`,
      Name: options.executionName,
      Input: options.input,
      StartTime: options.startTime ?? new Date().toISOString(),
    },
    StateMachine: { Id: 'arn:aws:states:us-east-1:123456789012:stateMachine:Compaction', Name: 'Compaction' },
  };
  return runStates(options.definition, options.input, {}, options, context);
}
