/** The one step timeline of the real testbeds (engine.ts), its seams (types.ts) and the instance launchers. */
export { runStep, reclaimAttempt, stepTagOf } from './engine.ts';
export { Ledger, readLedger, ledgerClosed, LEDGER_FILE, type LedgerEntry } from './ledger.ts';
export { ProcessLauncher, wrapPhase, mainProcessOf, killMarked, processesWithMarker, KSM_REGISTER_WRAPPER, type ProcessLauncherOptions } from './process-launcher.ts';
export { VmLauncher, fileNetworking, type GuestNetworking, type VmLauncherOptions } from './vm-launcher.ts';
export { describeHost } from './host-facts.ts';
export type { InstanceLauncher, LaunchContext, LaunchedInstance, HogStarter, MemoryHogRun, StepEnvironment } from './types.ts';
