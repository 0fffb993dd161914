/** Parsers for the result lines nuksm-native prints (see c/nuksm-native.c). */

export const NATIVE_WORKLOADS = ['randomaccess', 'btree', 'cg', 'xsbench'] as const;
export type NativeWorkload = (typeof NATIVE_WORKLOADS)[number];

export interface NativeResult {
  workload: NativeWorkload;
  runtimeS: number;
  checksum: string;
  footprintMiB: number;
  node: number;
  pid: number;
}

export interface HogStep {
  tS: number;
  registeredMiB: number;
}

function fields(line: string): Map<string, string> {
  return new Map(line.trim().split(/\s+/).slice(1).map((kv) => {
    const i = kv.indexOf('=');
    return [kv.slice(0, i), kv.slice(i + 1)] as [string, string];
  }));
}

function num(f: Map<string, string>, key: string, line: string): number {
  const v = Number(f.get(key));
  if (!f.has(key) || !Number.isFinite(v)) throw new Error(`nuksm-native result line has no numeric ${key}: '${line}'`);
  return v;
}

/** The one NUKSM_RESULT line of a run; throws naming what is missing. */
export function parseNativeResult(stdout: string): NativeResult {
  const lines = stdout.split('\n').filter((l) => l.startsWith('NUKSM_RESULT '));
  if (lines.length !== 1) throw new Error(`expected one NUKSM_RESULT line, found ${lines.length}`);
  const line = lines[0]!;
  const f = fields(line);
  const workload = f.get('workload') as NativeWorkload;
  if (!NATIVE_WORKLOADS.includes(workload)) throw new Error(`unknown workload in '${line}'`);
  const checksum = f.get('checksum');
  if (!checksum || !/^[0-9a-f]{16}$/.test(checksum)) throw new Error(`bad checksum in '${line}'`);
  return { workload, runtimeS: num(f, 'runtime_s', line), checksum, footprintMiB: num(f, 'footprint_mib', line), node: num(f, 'node', line), pid: num(f, 'pid', line) };
}

/** Every NUKSM_HOG step printed so far (partial output is fine: the hog runs for the whole step). */
export function parseHogSteps(stdout: string): HogStep[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('NUKSM_HOG '))
    .map((l) => {
      const f = fields(l);
      return { tS: num(f, 't_s', l), registeredMiB: num(f, 'registered_mib', l) };
    });
}

export interface NativeArgs {
  workload: NativeWorkload | 'memhog';
  node?: number;
  merge?: 'madvise' | 'prctl' | 'none';
  footprintMiB?: number;
  iterations?: number;
  seed?: number;
  holdS?: number;
  lingerS?: number;
  stepMiB?: number;
  maxMiB?: number;
  periodS?: number;
  goFile?: string;
  doneFile?: string;
}

/** argv for nuksm-native at binPath. */
export function nativeArgv(binPath: string, a: NativeArgs): string[] {
  const argv = [binPath, '--workload', a.workload];
  const opt = (name: string, v: string | number | undefined) => {
    if (v !== undefined) argv.push(name, String(v));
  };
  opt('--node', a.node);
  opt('--merge', a.merge);
  opt('--footprint-mib', a.footprintMiB);
  opt('--iterations', a.iterations);
  opt('--seed', a.seed);
  opt('--hold-s', a.holdS);
  opt('--linger-s', a.lingerS);
  opt('--step-mib', a.stepMiB);
  opt('--max-mib', a.maxMiB);
  opt('--period-s', a.periodS);
  opt('--go-file', a.goFile);
  opt('--done-file', a.doneFile);
  return argv;
}
