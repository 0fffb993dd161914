export { KernelControl, type KernelControlOptions, type BootInfo, type BootCheck, checkBoot, scanKernelLog, KERNEL_LOG_FAILURES } from './control.ts';
export { NUMA_BALANCING, readSysctl, writeSysctl } from './sysctl.ts';
