/**
 * The campaign side of resume-after-reboot: which hooks a campaign asks for, the progress file the
 * guard and the emulated launcher read, and the testbed-file rule that hooks need a local host.
 * (The hooks firing for real after reboots: test/system/emulated-campaign.test.ts.)
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { campaignResumeHook, PROGRESS_FILE, type CampaignProgress } from '../../src/campaign/boot-resume.ts';
import { createCampaign, executeCampaign, latestCampaignId, loadTestbedFile, MACHINE_FILE } from '../../src/campaign/campaign.ts';
import { parseTestbedFile } from '../../src/campaign/testbed-file.ts';
import { insideTestbedYaml } from '../../src/campaign/in-machine.ts';
import { parse } from 'yaml';
import { DoubleTestbed } from './support/double-testbed.ts';
import { main } from '../../src/cli/main.ts';
import { EXIT } from '../../src/cli/exit-codes.ts';
import { bootResumePaths } from '../../src/host/boot-resume/index.ts';
import { existsSync, mkdirSync } from 'node:fs';

const ROOT = join(import.meta.dirname, '..', '..');
const tmp = mkdtempSync(join(tmpdir(), 'nuksm-boot-resume-campaign-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const EMULATED = join(ROOT, 'experiments', 'testbeds', 'emulated.yaml');

describe('campaign boot-resume hooks', () => {
  const c = createCampaign({ spec: join(ROOT, 'experiments', 'emulated', 'emulated.yaml'), testbedFile: EMULATED, resultsDir: tmp, campaignId: 'emu.1' });
  c.store.close();

  it('asks for the systemd unit plus the @reboot cron entry when the plan has a scalability flow', () => {
    const hook = campaignResumeHook(c.plan, c.dir, 'systemd')!;
    expect(hook.via).toBe('both');
    expect(hook.id).toBe('emu_1');
    expect(hook.command.slice(-4)).toEqual(['resume', 'emu.1', '--results-dir', tmp]);
    expect(hook.command[1]).toMatch(/bin\/nuksm\.js$/);
    // The progress measure: finished steps from the journal, by a plain-JS script (no tsx at boot).
    expect(hook.progressCommand.slice(1)).toEqual([join(dirname(hook.command[1]!), 'finished-steps.cjs'), join(c.dir, 'campaign.sqlite')]);
    expect(execFileSync(hook.progressCommand[0]!, hook.progressCommand.slice(1), { encoding: 'utf8' }).trim()).toBe('0'); // a new campaign: nothing finished yet
    expect(campaignResumeHook(c.plan, c.dir, 'none')).toBeNull();
    expect(campaignResumeHook(c.plan, c.dir, 'cron')!.via).toBe('cron');
    const noHog = { ...c.plan, steps: c.plan.steps.filter((s) => !s.scenario.memoryHog) };
    expect(campaignResumeHook(noHog, c.dir, 'systemd')!.via).toBe('systemd');
  });

  it('writes progress.json before every step and the outcome at the end', async () => {
    const m = createCampaign({ spec: join(ROOT, 'experiments', 'smoke.yaml'), testbedFile: join(ROOT, 'experiments', 'testbeds', 'model.yaml'), resultsDir: tmp, campaignId: 'p1' });
    const seen: CampaignProgress[] = [];
    const result = await executeCampaign(m, new DoubleTestbed({}), {
      log: pino({ level: 'silent' }),
      onProgress: () => seen.push(JSON.parse(readFileSync(join(m.dir, PROGRESS_FILE), 'utf8')) as CampaignProgress),
    });
    m.store.close();
    expect(result.outcome).toBe('complete');
    expect(seen.map((p) => [p.outcome, p.done, p.current])).toEqual(m.plan.steps.map((s, i) => ['running', i, s.stepId]));
    const end = JSON.parse(readFileSync(join(m.dir, PROGRESS_FILE), 'utf8')) as CampaignProgress;
    expect(end).toMatchObject({ campaign: 'p1', outcome: 'complete', done: m.plan.steps.length, pending: 0, current: null });
  });

  it('rejects hooks for a host reached over SSH (they resume the runner on the machine that reboots)', () => {
    const tb = parse(readFileSync(join(ROOT, 'experiments', 'testbeds', 'physical-skylake.yaml'), 'utf8')) as Record<string, unknown>;
    expect(() => parseTestbedFile('x.yaml', { ...tb, resume: 'systemd' })).toThrowError(/x\.yaml.*resume.*host\.kind 'local'/s);
    expect(() => parseTestbedFile('x.yaml', { ...tb, resume: 'none' })).not.toThrow();
  });
});

describe('campaigns in the emulated machine', () => {
  it('count as the latest campaign while only machine.json is on the host', async () => {
    const root = join(tmp, 'latest');
    const older = createCampaign({ spec: join(ROOT, 'experiments', 'smoke.yaml'), testbedFile: join(ROOT, 'experiments', 'testbeds', 'model.yaml'), resultsDir: root, campaignId: 'older' });
    older.store.close();
    expect(latestCampaignId(root)).toBe('older');
    await new Promise((r) => setTimeout(r, 20));
    mkdirSync(join(root, 'in-machine'), { recursive: true });
    writeFileSync(join(root, 'in-machine', MACHINE_FILE), '{}\n');
    expect(latestCampaignId(root)).toBe('in-machine');
  });

  it('is the host file, local, resuming by systemd, marked inside, with the image’s kernel releases', () => {
    const host = loadTestbedFile(EMULATED);
    const yaml = insideTestbedYaml(host, { backports: { bootEntry: 'Debian GNU/Linux, with Linux 6.12.99+deb12-cloud-amd64', release: '6.12.99+deb12-cloud-amd64', ksmKnobs: {} } });
    const inside = parseTestbedFile('/var/lib/nuksm/inputs/x/testbed.yaml', parse(yaml));
    expect(inside.emulated!.inside).toBe(true);
    expect(host.emulated!.inside).toBe(false);
    expect(inside.host).toEqual({ kind: 'local' });
    expect(inside.resume).toBe('systemd');
    expect(inside.modes).toEqual(host.modes);
    expect(inside.nodes).toEqual(host.nodes);
    // Release and entry follow the image; the knobs stay the file's.
    expect(inside.kernels.backports).toEqual({ ...host.kernels.backports, bootEntry: 'Debian GNU/Linux, with Linux 6.12.99+deb12-cloud-amd64', release: '6.12.99+deb12-cloud-amd64' });
    expect(inside.kernels.bookworm).toEqual(host.kernels.bookworm);
  });
});

describe('nuksm boot-resume', () => {
  it('pauses, unpauses and stops the hooks of a campaign on this host; refuses a campaign without hooks', async () => {
    const stateRoot = join(tmp, 'resume-state');
    const args = (action: string) => ['boot-resume', action, 'emu.1', '--results-dir', tmp, '--state-root', stateRoot];
    const write = process.stdout.write.bind(process.stdout);
    const out: string[] = [];
    process.stdout.write = ((c: string) => (out.push(String(c)), true)) as typeof process.stdout.write;
    try {
      expect(await main(args('show'))).toBe(EXIT.config);
      const p = bootResumePaths({ id: 'emu_1', stateRoot });
      mkdirSync(p.stateDir, { recursive: true });
      expect(await main(args('pause'))).toBe(EXIT.ok);
      expect(existsSync(p.pauseFile)).toBe(true);
      expect(out.join('')).toMatch(/campaign emu\.1: hooks .*\(paused\)/);
      expect(await main(args('unpause'))).toBe(EXIT.ok);
      expect(existsSync(p.pauseFile)).toBe(false);
      expect(await main(args('stop'))).toBe(EXIT.ok);
      expect(existsSync(p.stopFile)).toBe(true);
      expect(out.at(-1)).toMatch(/\(stopped\)/);
    } finally {
      process.stdout.write = write;
    }
  });
});
