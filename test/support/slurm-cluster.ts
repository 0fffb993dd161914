/**
 * A real one-machine Slurm cluster for tests (Debian slurm-wlm + munge): munged, slurmctld and
 * slurmd started in the foreground as children of the test, configured in a temporary directory,
 * listening on 127.0.0.1 only (CommunicationParameters=NoCtldInAddrAny,NoInAddrAny; ports chosen
 * free). `stop()` cancels every job, waits for the queue to drain, stops the daemons and removes
 * the directory. The Slurm commands reach it through SLURM_CONF (set in `env`).
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { cpus, hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { freePort } from '../host/sshd-harness.ts';

export interface SlurmCluster {
  dir: string;
  conf: string;
  node: string;
  env: Record<string, string>;
  stop(): Promise<void>;
}

async function until<T>(what: string, deadlineMs: number, probe: () => Promise<T | null>): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await probe().catch(() => null);
    if (v !== null) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${deadlineMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

export async function startSlurmCluster(opts: { features: string[] }): Promise<SlurmCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'nuksm-slurm-'));
  chmodSync(dir, 0o755);
  const munge = join(dir, 'munge');
  mkdirSync(munge, { mode: 0o700 });
  for (const d of ['state', 'spool']) mkdirSync(join(dir, d));
  const key = join(munge, 'munge.key');
  writeFileSync(key, randomBytes(1024), { mode: 0o400 });
  const socket = join(munge, 'munge.sock');
  const node = hostname();
  const [ctldPort, slurmdPort] = [await freePort(), await freePort()];
  const n = cpus().length;
  const conf = join(dir, 'slurm.conf');
  writeFileSync(
    conf,
    [
      'ClusterName=nuksmtest',
      `SlurmctldHost=${node}(127.0.0.1)`,
      `SlurmctldPort=${ctldPort}`,
      `SlurmdPort=${slurmdPort}`,
      'CommunicationParameters=NoCtldInAddrAny,NoInAddrAny',
      'AuthType=auth/munge',
      'CredType=cred/munge',
      `AuthInfo=socket=${socket}`,
      'SlurmUser=root',
      'SlurmdUser=root',
      `StateSaveLocation=${join(dir, 'state')}`,
      `SlurmdSpoolDir=${join(dir, 'spool')}`,
      `SlurmctldPidFile=${join(dir, 'slurmctld.pid')}`,
      `SlurmdPidFile=${join(dir, 'slurmd.pid')}`,
      `SlurmctldLogFile=${join(dir, 'slurmctld.log')}`,
      `SlurmdLogFile=${join(dir, 'slurmd.log')}`,
      'SlurmdParameters=config_overrides',
      'ProctrackType=proctrack/linuxproc',
      'TaskPlugin=task/none',
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_Core',
      'SchedulerType=sched/backfill',
      'ReturnToService=2',
      'AccountingStorageType=accounting_storage/none',
      'JobAcctGatherType=jobacct_gather/none',
      `JobCompType=jobcomp/filetxt`,
      `JobCompLoc=${join(dir, 'jobcomp.txt')}`,
      'MpiDefault=none',
      'SwitchType=switch/none',
      'KillWait=30',
      // No accounting (slurmdbd) here: scontrol must still know a job that ended minutes ago.
      'MinJobAge=3600',
      `NodeName=${node} NodeAddr=127.0.0.1 CPUs=${n} Sockets=1 CoresPerSocket=${n} ThreadsPerCore=1 RealMemory=1000 Features=${opts.features.join(',')} State=UNKNOWN`,
      `PartitionName=nuksm Nodes=${node} Default=YES MaxTime=INFINITE State=UP OverSubscribe=EXCLUSIVE`,
      '',
    ].join('\n'),
  );
  // slurmd initialises its cgroup plugin even with proctrack/linuxproc and task/none.
  writeFileSync(join(dir, 'cgroup.conf'), existsSync('/sys/fs/cgroup/cgroup.controllers') ? 'CgroupPlugin=cgroup/v2\n' : 'CgroupPlugin=cgroup/v1\nCgroupMountpoint=/sys/fs/cgroup\n');
  const env = { SLURM_CONF: conf };
  const daemons: ResultPromise[] = [];
  const start = (cmd: string, args: string[]) => {
    const p = execa(cmd, args, { env, reject: false, stdio: ['ignore', 'ignore', 'pipe'], cleanup: true });
    daemons.push(p);
    return p;
  };
  const stopDaemons = async () => {
    for (const p of [...daemons].reverse()) {
      p.kill('SIGTERM');
      const t = setTimeout(() => p.kill('SIGKILL'), 15_000);
      await p;
      clearTimeout(t);
    }
  };
  try {
    start('munged', ['-F', '--force', `--key-file=${key}`, `--socket=${socket}`, `--pid-file=${join(munge, 'munged.pid')}`, `--log-file=${join(munge, 'munged.log')}`, `--seed-file=${join(munge, 'munged.seed')}`]);
    await until('munged socket', 20_000, async () => (existsSync(socket) ? true : null));
    start('slurmctld', ['-D', '-i', '-f', conf]);
    await until('slurmctld answering', 60_000, async () => ((await execa('scontrol', ['ping'], { env, timeout: 10_000, reject: false })).stdout.includes('UP') ? true : null));
    start('slurmd', ['-D', '-f', conf]);
    await until('node idle', 60_000, async () => {
      const r = await execa('sinfo', ['-h', '-N', '-o', '%T'], { env, timeout: 10_000, reject: false });
      return r.stdout.trim() === 'idle' ? true : null;
    });
  } catch (err) {
    await stopDaemons();
    const logs = ['slurmctld.log', 'slurmd.log'].map((f) => join(dir, f)).filter(existsSync);
    throw new Error(`${(err as Error).message} (logs: ${logs.join(', ')})`);
  }
  return {
    dir,
    conf,
    node,
    env,
    async stop() {
      const q = await execa('squeue', ['-h', '-o', '%i'], { env, timeout: 10_000, reject: false });
      const jobs = q.stdout.split('\n').filter(Boolean);
      if (jobs.length) {
        await execa('scancel', jobs, { env, timeout: 10_000, reject: false });
        await until('queue drained', 90_000, async () => ((await execa('squeue', ['-h', '-o', '%i'], { env, timeout: 10_000, reject: false })).stdout.trim() === '' ? true : null)).catch(() => undefined);
      }
      await stopDaemons();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
