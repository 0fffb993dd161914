export { Virsh } from './virsh.ts';
export {
  type DomainSpec,
  type KernelBoot,
  type PlanOptions,
  type VmNetwork,
  QEMU_XMLNS,
  planDomains,
  plannedNetwork,
  renderDomainXml,
  withSshPort,
  addQemuArgs,
  userNetworkArgs,
  USER_NIC_PCI_SLOT,
  loadTemplate,
  macForName,
  parseCpuList,
  formatCpuList,
} from './domain-xml.ts';
export { guestNetworkOf, vmNetworkFor, needsSshPort, needsLibvirtAddress, sshEndpointOf, allocateLoopbackPort, isHostfwdConflict } from './network.ts';
export { LibvirtVm, startVms, teardownVms, createOverlay, parseDomifaddr, type StartedVm, type StartVmsOptions, type VmTimeouts } from './vm.ts';
export {
  DEFAULT_MAX_OFF_NODE_PCT,
  comparePlacement,
  verifyPlacement,
  readPlacement,
  qemuPid,
  reniceProcess,
  parseNumaMaps,
  parseVcpupin,
  parseEmulatorpin,
  parseNumatune,
  offNodePct,
  type PlacementReadback,
  type PlacementReport,
} from './placement.ts';
