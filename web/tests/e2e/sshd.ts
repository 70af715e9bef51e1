// A real OpenSSH server for browser tests: sshd on 127.0.0.2 (and, when asked, up to 15 more
// loopback addresses, to stand in for a fleet; sshd listens on at most 16 sockets) with a generated host key and its own authorized_keys
// file.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SSHD = '/usr/sbin/sshd';
const HOST = '127.0.0.2';

function keygen(path: string) {
  rmSync(path, { force: true });
  rmSync(`${path}.pub`, { force: true });
  const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path]);
  if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
}

async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, HOST, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => ok(port));
    });
  });
}

async function waitForPort(port: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const up = await new Promise<boolean>((ok) => {
      const c = createConnection({ host: HOST, port }, () => {
        c.destroy();
        ok(true);
      });
      c.once('error', () => ok(false));
    });
    if (up) return;
    if (Date.now() > deadline) throw new Error('sshd did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface TestSshd {
  host: string;
  port: number;
  user: string;
  hostKey: () => string;
  fingerprint: () => string;
  authorize: (publicKey: string) => void;
  restartWithNewHostKey: () => Promise<void>;
  stop: () => Promise<void>;
}

/** `extraConfig` lines go first (sshd keeps the first value of a keyword), e.g. `PasswordAuthentication yes`. */
export async function startSshd(opts: { extraAddresses?: string[]; extraConfig?: string[] } = {}): Promise<TestSshd> {
  if (!existsSync(SSHD)) throw new Error(`${SSHD} is missing: install it with \`apt-get install -y openssh-server\``);
  mkdirSync('/run/sshd', { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), 'steward-sshd-'));
  const port = await freePort();
  const user = spawnSync('id', ['-un']).stdout.toString().trim();
  writeFileSync(join(dir, 'authorized_keys'), '');
  mkdirSync(join(dir, 'home'));
  keygen(join(dir, 'host_key'));
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      ...(opts.extraConfig ?? []),
      `Port ${port}`,
      `ListenAddress ${HOST}`,
      ...(opts.extraAddresses ?? []).map((a) => `ListenAddress ${a}`),
      // Many hosts of one run connect at once.
      'MaxStartups 500',
      `HostKey ${dir}/host_key`,
      `PidFile ${dir}/sshd.pid`,
      `AuthorizedKeysFile ${dir}/authorized_keys`,
      'StrictModes no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'PermitRootLogin prohibit-password',
      'LogLevel ERROR',
      // The test account's shells get an empty HOME of this sshd's, so they read none of its
      // start-up files (slow on test machines, and a session killed halfway through them can
      // leave locks behind); SHLVL=1 keeps bash from reading ~/.bashrc for commands. SetEnv
      // takes the first value that applies, hence one per Match; Match blocks go last.
      `Match User ${user}`,
      `  SetEnv SHLVL=1 HOME=${dir}/home`,
      'Match all',
      '  SetEnv SHLVL=1',
      '',
    ].join('\n'),
  );
  let child: ChildProcess | null = null;
  const start = async () => {
    child = spawn(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: 'ignore' });
    await waitForPort(port);
  };
  const stopChild = async () => {
    const c = child;
    child = null;
    if (c && c.exitCode === null) {
      c.kill('SIGTERM');
      await new Promise((r) => c.once('exit', r));
    }
  };
  await start();
  const hostKey = () => readFileSync(join(dir, 'host_key.pub'), 'utf8').trim();
  return {
    host: HOST,
    port,
    user,
    hostKey,
    fingerprint: () => spawnSync('ssh-keygen', ['-l', '-f', join(dir, 'host_key.pub')]).stdout.toString().split(' ')[1]!,
    authorize: (publicKey) => appendFileSync(join(dir, 'authorized_keys'), `${publicKey.trim()}\n`),
    restartWithNewHostKey: async () => {
      await stopChild();
      keygen(join(dir, 'host_key'));
      await start();
    },
    stop: async () => {
      await stopChild();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
