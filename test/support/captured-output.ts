import { afterEach, beforeEach, vi } from 'vitest';

/**
 * What the CLI writes to stdout / stderr during each test of the calling file (or describe block), reset
 * before each; process.exitCode is cleared after each. Read `io.out` / `io.err` after the call.
 */
export function captureOutput(): { out: string; err: string } {
  const io = { out: '', err: '' };
  beforeEach(() => {
    io.out = '';
    io.err = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((io.out += String(chunk)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((io.err += String(chunk)), true));
  });
  afterEach(() => {
    vi.restoreAllMocks();
    process.exitCode = undefined;
  });
  return io;
}
