/**
 * The workflow's task handlers wired for a local run: the same core as the Lambda functions, with a
 * directory instead of the S3 work bucket and the tokens handed in instead of read from AWS.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { accessTokenResolver } from '../lambda/core/access-token';
import type { CoreLogger } from '../lambda/core/logger';
import { SmartcarClient } from '../lambda/core/smartcar-client';
import { taskHandlers, type WorkStore } from '../lambda/core/workflow';
import type { TaskHandler } from './workflow-runner';

export function directoryWorkStore(root: string): WorkStore {
  return {
    async putJson(key, value) {
      const file = path.join(root, key);
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, JSON.stringify(value));
    },
    async getJson(key) {
      return JSON.parse(await readFile(path.join(root, key), 'utf8'));
    },
    async getJsonIfExists(key) {
      const text = await readFile(path.join(root, key), 'utf8').catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw err;
      });
      return text === undefined ? undefined : JSON.parse(text);
    },
    async listKeys(prefix) {
      const dir = path.join(root, prefix);
      const names = await readdir(dir).catch(() => [] as string[]);
      return names.map((n) => `${prefix}${n}`);
    },
    uri: (key) => path.join(root, key),
  };
}

export interface LocalWorkflowOptions {
  readonly workDir: string;
  readonly apiOrigin: string;
  /** The execution inputs by execution ARN, standing in for DescribeExecution. */
  readonly inputs: Map<string, unknown>;
  /** Access tokens by secret ARN, standing in for Secrets Manager. @default none */
  readonly secrets?: Map<string, string>;
  readonly managementToken?: string;
  readonly defaultWebhookId?: string;
  /** @default - only `defaultWebhookId`, as deployed */
  readonly allowedWebhookIds?: readonly string[];
  readonly accessTokenSecretPrefix?: string;
  readonly logger: CoreLogger;
  readonly timeoutMs?: number;
}

/** Handlers keyed the way {@link runLocally} matches them to the template's function logical ids. */
export function localTaskHandlers(options: LocalWorkflowOptions): Record<string, TaskHandler> {
  const readInput = async (executionArn: string) => options.inputs.get(executionArn);
  // The same resolution and caching as deployed; only the readers differ.
  const resolveAccessToken = accessTokenResolver({
    executionInput: readInput,
    secretString: async (secretArn) => {
      const token = options.secrets?.get(secretArn);
      if (token === undefined) throw new Error(`no local secret ${secretArn}`);
      return token;
    },
  });
  const tasks = taskHandlers(
    {
      client: new SmartcarClient({ origin: options.apiOrigin, timeoutMs: options.timeoutMs }),
      store: directoryWorkStore(options.workDir),
      logger: options.logger,
      resolveAccessToken,
      managementToken: async () => {
        if (!options.managementToken)
          throw new Error('unsubscribe needs the management token (SMARTCAR_MANAGEMENT_TOKEN)');
        return options.managementToken;
      },
      defaultWebhookId: options.defaultWebhookId,
      allowedWebhookIds: options.allowedWebhookIds,
      accessTokenSecretPrefix: options.accessTokenSecretPrefix ?? 'smartcar/access-tokens/',
    },
    readInput,
  );
  return {
    PlanFunction: tasks.plan as TaskHandler,
    VehicleFunction: tasks.vehicle as TaskHandler,
    ResultsFunction: tasks.results as TaskHandler,
  };
}
