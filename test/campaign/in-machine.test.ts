/** The emulated machine's host side without a machine: the wait's deadline (src/campaign/in-machine.ts). */
import { describe, expect, it } from 'vitest';
import { machineDeadlineMs } from '../../src/campaign/in-machine.ts';

describe('machineDeadlineMs', () => {
  it('is 3 × the plan estimate plus one boot timeout, at least 1 h — no fixed 6 h cap', () => {
    expect(machineDeadlineMs(10 * 3600, 600)).toBe((3 * 36_000 + 600) * 1000); // a 10 h plan waits 30 h 10 min
    expect(machineDeadlineMs(40 * 3600, 900)).toBeGreaterThan(6 * 3_600_000 * 10);
    expect(machineDeadlineMs(60, 300)).toBe(3_600_000); // a short plan still gets an hour
    expect(machineDeadlineMs(1000.4, 0)).toBe(3_600_000);
    expect(machineDeadlineMs(1300, 120)).toBe(4_020_000); // 3 × 1300 s + 120 s, past the hour
  });
});
