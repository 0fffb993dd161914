/** Workload registry by name: the five benchmarks of the paper, and the native stand-ins (named `*-native`). */
import { HarnessError } from '../core/errors.ts';
import { btree } from './btree/index.ts';
export { BTREE_FIG4 } from './btree/index.ts';
export { XSBENCH_FIG8 } from './xsbench/index.ts';
export { mysqlPaths } from './mysql/index.ts';
import { cg } from './cg/index.ts';
import { mysql } from './mysql/index.ts';
import { randomaccess } from './randomaccess/index.ts';
import { WORKLOAD_NAMES, type Workload, type WorkloadName } from './types.ts';
import { xsbench } from './xsbench/index.ts';
import { btreeNative, cgNative, randomaccessNative, xsbenchNative } from './native/workloads.ts';

export { WORKLOAD_NAMES, PAPER_WORKLOAD_NAMES, NATIVE_WORKLOAD_NAMES } from './types.ts';
export type { Phase, Workload, WorkloadName, WorkloadParams, WorkloadVariant, ParseOptions, InstallContext, RunContext } from './types.ts';
export { runWorkload, type RunWorkloadOptions } from './run.ts';
export { runPhases, parsedOutputOf, standaloneArgv, writeSecretFiles, type PhaseRunResult, type PhaseOutcome } from './phase-runner.ts';

const WORKLOADS: Record<WorkloadName, Workload> = {
  xsbench,
  mysql,
  btree,
  randomaccess,
  cg,
  'xsbench-native': xsbenchNative,
  'randomaccess-native': randomaccessNative,
  'btree-native': btreeNative,
  'cg-native': cgNative,
};

export function isWorkloadName(name: string): name is WorkloadName {
  return (WORKLOAD_NAMES as readonly string[]).includes(name);
}

export function getWorkload(name: string): Workload {
  if (!isWorkloadName(name)) {
    throw new HarnessError('config', `unknown workload '${name}' (known: ${WORKLOAD_NAMES.join(', ')})`, { workload: name });
  }
  return WORKLOADS[name];
}
