import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { treeHash, hash } from '../../../src/testbeds/images/debian.ts';
import { verifiedSnapshot } from '../../../src/testbeds/images/guest.ts';
import { ARTIFACT_SNAPSHOT } from '../../../src/workloads/cache.ts';

const work = mkdtempSync(join(tmpdir(), 'nuksm-guest-unit-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('guest image inputs', () => {
  it('refuses a missing snapshot, naming the option and how to make it', async () => {
    await expect(verifiedSnapshot(join(work, 'none'))).rejects.toThrow(/not found \(pass --artifact-dir or set NUKSM_ARTIFACT_DIR\); make it with: git clone/);
  });

  it('refuses a snapshot whose sha256 is not the pinned one', async () => {
    const dir = join(work, 'bad');
    mkdirSync(dir);
    writeFileSync(join(dir, ARTIFACT_SNAPSHOT.file), 'not the artifact');
    // A SHA256SUMS agreeing with the wrong file does not help when the project pins the hash.
    writeFileSync(join(dir, 'SHA256SUMS'), `${'0'.repeat(64)}  ${ARTIFACT_SNAPSHOT.file}\n`);
    await expect(verifiedSnapshot(dir)).rejects.toThrow(/sha256 [0-9a-f]{64} does not match/);
  });

  it('hashes a tree by names and contents (the workloads part of the guest key)', async () => {
    const dir = join(work, 'tree');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    writeFileSync(join(dir, 'a.ts'), 'x');
    writeFileSync(join(dir, 'sub/b.ts'), 'y');
    const h1 = await treeHash(dir);
    expect(h1).toMatch(/^[0-9a-f]{16}$/);
    expect(await treeHash(dir)).toBe(h1);
    writeFileSync(join(dir, 'sub/b.ts'), 'y2');
    expect(await treeHash(dir)).not.toBe(h1);
    expect(hash(['a', 'bc'])).not.toBe(hash(['ab', 'c']));
  });
});
