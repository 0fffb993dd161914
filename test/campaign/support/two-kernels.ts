/** A model testbed file with two kernels ('old' 6.1.0, 'new' 6.12.0) and the given mode → kernel map, for runner and boot tests. */
import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';

export function writeTwoKernelTestbed(file: string, modes: Record<string, { kernel: string | string[] }>, name = 'two-kernels'): string {
  writeFileSync(
    file,
    stringify({
      name,
      kind: 'model',
      nodes: [
        { id: 0, cpus: [0, 1], memoryGiB: 16 },
        { id: 1, cpus: [2, 3], memoryGiB: 16 },
      ],
      kernels: { old: { bootEntry: 'Linux old', release: '6.1.0' }, new: { bootEntry: 'Linux new', release: '6.12.0' } },
      modes,
    }),
  );
  return file;
}
