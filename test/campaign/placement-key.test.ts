/** The testbed-file key modes.<mode>.placement (user-space nuKSM placement on a stock kernel). */
import { describe, expect, it } from 'vitest';
import { parseTestbedFile } from '../../src/campaign/testbed-file.ts';
import { ConfigError } from '../../src/core/errors.ts';
import { kernelKnobsOf } from '../../src/testbeds/kernels.ts';

const testbed = (kind: string, modes: Record<string, unknown>) => ({
  name: 'tb',
  kind,
  nodes: [
    { id: 0, cpus: [0], memoryGiB: 1 },
    { id: 1, cpus: [1], memoryGiB: 1 },
  ],
  kernels: { backports: { bootEntry: 'Debian 6.12', release: '6.12.0-cloud-amd64' } },
  modes,
  ...(kind === 'emulated' ? { emulated: { cpusPerNode: 1, memoryMiBPerNode: 1024, imageCacheDir: '.cache/emulated', sshPort: 2222 } } : {}),
});

function rejection(data: unknown): ConfigError {
  try {
    parseTestbedFile('tb.yaml', data);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('accepted');
}

describe('modes.<mode>.placement', () => {
  it('maps nuksm-fair and nuksm-priority to user-space placement on a stock kernel; the default is the kernel', () => {
    const tb = parseTestbedFile('tb.yaml', testbed('emulated', { ksm: { kernel: 'backports' }, 'nuksm-fair': { kernel: 'backports', placement: 'userspace' }, 'nuksm-priority': { kernel: 'backports', placement: 'userspace' } }));
    expect(kernelKnobsOf(tb, 'nuksm-fair').placement).toBe('userspace');
    expect(kernelKnobsOf(tb, 'nuksm-priority').placement).toBe('userspace');
    expect(kernelKnobsOf(tb, 'ksm').placement).toBe('kernel');
  });

  it('refuses userspace for a mode the engine cannot do, for the model, and unknown values', () => {
    expect(rejection(testbed('emulated', { ksm: { kernel: 'backports', placement: 'userspace' } }))).toMatchObject({ keyPath: 'modes.ksm.placement' });
    expect(rejection(testbed('emulated', { 'nuksm-forest': { kernel: 'backports', placement: 'userspace' } })).message).toMatch(/only modes nuksm-fair, nuksm-priority/);
    expect(rejection(testbed('model', { 'nuksm-fair': { kernel: 'backports', placement: 'userspace' } })).message).toMatch(/model testbed simulates nuKSM itself/);
    expect(rejection(testbed('emulated', { 'nuksm-fair': { kernel: 'backports', placement: 'user' } })).keyPath).toMatch(/^modes\.nuksm-fair\.placement/);
  });
});
