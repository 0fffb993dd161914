/**
 * The step engine's seams. One timeline (engine.ts) runs every step of every real testbed; what
 * differs between a libvirt VM, a node-bound process on a host and a node-bound process inside the
 * emulated machine is behind InstanceLauncher; what differs between hosts (how the Fig. 8 hog is
 * started, which perf event set exists) is in StepEnvironment.
 *
 * Call order for one step (engine.ts), each line finished before the next starts:
 *  1. the scenario is checked against the environment (launchers for every instance kind, known
 *     workloads, parameters) — nothing is touched before this passes;
 *  2. the ledger is opened in the attempt's raw directory; KSM's knobs are saved (into the ledger,
 *     so a resume after a kill can restore them), KSM unmerged and the step's knobs written (with
 *     timeline.ksmdStart 'all-registered', run=0 for now);
 *  3. host monitors start (from `scenario.monitors`, one factory), then the memory hog if any;
 *  4. for each instance in stagger order: `launcher.launch()` (records what it creates in the
 *     ledger BEFORE creating it), then per workload `install()` and the phases before the timed
 *     one; a resident timed phase (Phase.resident) is started here and waited for until ready
 *     (staggerFrom 'workload': every launch and install first, then the phases at the stagger times);
 *     then, with ksmdStart 'all-registered', run=1;
 *  5. instance monitors start as soon as every instance's memory-holding PID is known (VMs and
 *     resident phases: now; other processes: after their timed phases start); with them, for a mode
 *     mapped to user-space placement (StepContext.placement), the placement engine (./placement-hook.ts);
 *  6. merge wait; 7. timed phases (concurrent or sequential, detached so an SSH drop loses
 *     nothing); 8. the placement engine stops (its samples stored), then instance monitors stop
 *     (final placement read-out while the data is mapped),
 *     host monitors stop (once-per-run values); resident phases are released;
 *  9. post phases, parse, emit; 10. always: OOM check, monitors/hog stopped, `instance.stop()` for
 *     every launched instance, KSM knobs restored, work dir removed, ledger marked closed.
 */
import type { Logger } from 'pino';
import type { InstanceSpec, MemoryHog } from '../../core/scenario.ts';
import type { SampleSink } from '../../core/sample.ts';
import type { Executor } from '../../host/exec/types.ts';
import type { PerfEventSet } from '../../host/perf/events.ts';
import type { Phase } from '../../workloads/types.ts';
import type { Ledger } from './ledger.ts';

export interface LaunchContext {
  /** Unique per attempt: every name the launcher creates on the host includes it. */
  stepTag: string;
  signal: AbortSignal;
  log: Logger;
  ledger: Ledger;
  /** The attempt's raw directory (consoles, logs) on the machine running nuksm. */
  rawDir: string;
  /** All instances of the scenario (VMs sharing a node take its CPUs in turn). */
  instances: readonly InstanceSpec[];
}

/** A started instance: where its workloads run and how it is undone. */
export interface LaunchedInstance {
  readonly spec: InstanceSpec;
  /** Where the instance's phases run (the guest over SSH for a VM, the host for a process). */
  readonly exec: Executor;
  readonly installRoot: string;
  readonly cacheDir: string;
  readonly workDir: string;
  /** A phase's argv as run on the target (binding, nice and KSM registration for processes). */
  wrap(phase: Pick<Phase, 'argv' | 'env' | 'cwd'>, opts?: { registersItself?: boolean }): string[];
  /** The host PID holding the instance's memory when it is known from the launch (QEMU's); else null. */
  readonly residentPid: number | null;
  /** The host PID holding the instance's memory, looked up now (the largest process of the instance). */
  memoryPid(): Promise<number>;
  /** Undo the launch (VM destroyed and undefined with its overlay, processes killed). Idempotent. */
  stop(): Promise<void>;
}

export interface InstanceLauncher {
  readonly kind: InstanceSpec['kind'];
  /** Everything that can be refused without touching the host (e.g. VM names, node capacity). */
  check?(instances: readonly InstanceSpec[], sourceFile: string): void;
  launch(spec: InstanceSpec, ctx: LaunchContext): Promise<LaunchedInstance>;
}

export interface MemoryHogRun {
  stop(): Promise<void>;
}

export type HogStarter = (
  hog: MemoryHog,
  opts: { workDir: string; /** NUKSM_INSTANCE marker for the hog's processes (killed on reclaim). */ marker: string; stepStartMs: number; periodS: number; seed: number; emit: SampleSink; signal: AbortSignal },
) => Promise<MemoryHogRun>;

/** What one real testbed gives the engine. */
export interface StepEnvironment {
  /** The host: KSM sysfs, monitors, kernel log. */
  hostExec: Executor;
  launchers: Partial<Record<InstanceSpec['kind'], InstanceLauncher>>;
  /** Root of per-step work directories on the host. */
  hostWorkRoot: string;
  startHog: HogStarter | null;
  /** The host's DRAM counter events, resolved when a step asks for 'perf-dram'; null: none here, the monitor is not started. */
  perfEventSet: () => PerfEventSet | null;
  /** Prebuilt nuksm-move-pages binaries to try for user-space placement (else it is compiled on the host). */
  placementHelpers?: readonly string[];
  /**
   * Set by emulators whose TLB never drops a translation (QEMU TCG): user-space placement flushes the instances'
   * TLBs this often so DAMON's accessed bits work (src/host/placement/access-bit-refresh.ts). Unset on hardware.
   */
  placementAccessBitRefreshMs?: number;
  /** node binary on the host for the KSM placement page walk. */
  nodeBinary?: string;
  /** Walk KSM placement every period (small footprints) rather than once at the end. */
  ksmPlacementPeriodic: boolean;
  /** Which variant's defaults fill parameters a scenario leaves out. */
  defaultVariant: 'paper' | 'small';
  workloadPins?: Record<string, string>;
  /** KSM sysfs command timeout. */
  commandTimeoutMs: number;
}
