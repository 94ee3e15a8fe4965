/**
 * Running a command inside a VM with a real Linux kernel: Debian's
 * linux-image-amd64 (6.1, ships wireguard.ko) under qemu with software
 * emulation (TCG; KVM guests hang on these machines). The host's root is
 * shared read-only over 9p, so node, the built addon, node_modules and the
 * tests run inside unchanged; a busybox initramfs (scripts/vm/init) mounts
 * it, runs the one command chrooted into it and powers off.
 *
 * The command goes in, and its exit status comes back, through a writable 9p
 * share of a host temp dir (see scripts/vm/init); the guest's serial console
 * streams to onOutput live and carries a second copy of the status as a
 * marker line. Initramfs images are cached under build/vm/, keyed by kernel
 * version and a hash of the scripts that build them. docs/testing.md has the
 * whole picture and timings.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { onExit, run, spawnIn } from './exec.js';

/** The repository root: this file is harness/testbed/vm.ts. */
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SCRIPTS = join(REPO, 'scripts/vm');
const BUILD_SCRIPT = join(SCRIPTS, 'build-initramfs.sh');
const INIT_SCRIPT = join(SCRIPTS, 'init');
export const VM_BUILD_DIR = join(REPO, 'build/vm');

export const QEMU = 'qemu-system-x86_64';
/** A whole test suite under emulation takes minutes; a quarter of an hour means stuck. */
export const VM_DEFAULT_TIMEOUT_MS = 15 * 60_000;
export const VM_DEFAULT_MEMORY_MIB = 2048;
export const VM_DEFAULT_CPUS = 2;
/** 9p mount tags, matching scripts/vm/init. */
export const HOST_ROOT_TAG = 'hostroot';
export const IO_TAG = 'wgjitio';
/** The share of a working directory the guest's tmpfs would hide; init mounts it where the file `hidden-dir` in the io share says. */
export const HIDDEN_DIR_TAG = 'wgjitcwd';
/** Where the guest sees the IO share, inside the chroot. */
export const GUEST_IO_DIR = '/run/wgjit-vm';
/** Set in the guest command's environment. */
export const IN_VM_ENV = 'WGJIT_IN_VM';
export const EXIT_MARKER = 'WGJIT-VM-EXIT';

/** Host paths the guest does not see (it mounts its own over them). */
const HIDDEN_IN_GUEST = ['/tmp', '/run', '/var/run', '/var/tmp', '/proc', '/sys', '/dev'];

const GUEST_BASE_ENV: Readonly<Record<string, string>> = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  // The host's /root is read-only in the guest; npm and friends write under HOME.
  HOME: '/tmp/home',
  TMPDIR: '/tmp',
  LANG: 'C.UTF-8',
  [IN_VM_ENV]: '1',
};

// ------------------------------------------------------------- pure parts

/**
 * The kernel release linux-image-amd64 depends on, from its dpkg Depends
 * field ("linux-image-6.1.0-56-amd64 (= 6.1.192-2)" → "6.1.0-56-amd64").
 */
export function kernelFromDepends(depends: string): string | null {
  for (const alt of depends.split(/[,|]/)) {
    const m = /^\s*linux-image-(\d[^\s(]*)/.exec(alt);
    if (m) return m[1]!;
  }
  return null;
}

/** Quotes one word for a POSIX shell. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Whether the guest sees host path `p` (absolute) as the host does. */
export function visibleInGuest(p: string): boolean {
  return !HIDDEN_IN_GUEST.some((h) => p === h || p.startsWith(`${h}/`));
}

export interface GuestCommand {
  command: readonly string[];
  cwd: string;
  env: Readonly<Record<string, string>>;
}

/**
 * The script the guest's init runs (with the host's /bin/sh, chrooted): cd,
 * then exec the command in exactly `env` (plus nothing inherited).
 */
export function commandScript({ command, cwd, env }: GuestCommand): string {
  if (command.length === 0) throw new RangeError('empty command');
  // env(1) would take a first word with "=" for an assignment.
  if (command[0]!.includes('=')) throw new RangeError(`command name with "=": ${command[0]!}`);
  for (const k of Object.keys(env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new RangeError(`invalid environment variable name ${JSON.stringify(k)}`);
  }
  const assignments = Object.entries(env).map(([k, v]) => shellQuote(`${k}=${v}`));
  const lines = ['# written by harness/testbed/vm.ts'];
  if (env.HOME !== undefined) lines.push(`mkdir -p ${shellQuote(env.HOME)}`);
  lines.push(`cd ${shellQuote(cwd)} || exit 126`);
  lines.push(`exec env -i -- ${[...assignments, ...command.map(shellQuote)].join(' ')}`);
  return `${lines.join('\n')}\n`;
}

export interface QemuConfig {
  kernel: string;
  initrd: string;
  ioDir: string;
  /**
   * A host directory the guest's own tmpfs mounts would hide (a checkout
   * under /tmp): shared read-only too, and mounted by init at the same path.
   */
  hiddenDir?: string;
  memoryMiB: number;
  cpus: number;
}

/** qemu's argv (without the program): TCG only, serial console on stdio, no network, no disks. */
export function qemuArgs(c: QemuConfig): string[] {
  // -virtfs splits its value on commas.
  for (const dir of [c.ioDir, c.hiddenDir ?? '']) if (dir.includes(',')) throw new RangeError(`path with a comma: ${dir}`);
  return [
    '-accel', 'tcg,thread=multi',
    '-cpu', 'max',
    '-smp', String(c.cpus),
    '-m', String(c.memoryMiB),
    '-nodefaults',
    '-no-reboot',
    '-display', 'none',
    '-monitor', 'none',
    '-serial', 'stdio',
    '-kernel', c.kernel,
    '-initrd', c.initrd,
    // panic=-1 reboots at once on a panic, and -no-reboot turns that into an exit.
    '-append', 'console=ttyS0 quiet panic=-1',
    '-virtfs', `local,path=/,mount_tag=${HOST_ROOT_TAG},security_model=none,readonly=on,multidevs=remap`,
    '-virtfs', `local,path=${c.ioDir},mount_tag=${IO_TAG},security_model=none`,
    ...(c.hiddenDir === undefined ? [] : ['-virtfs', `local,path=${c.hiddenDir},mount_tag=${HIDDEN_DIR_TAG},security_model=none,readonly=on,multidevs=remap`]),
    '-device', 'virtio-rng-pci',
  ];
}

/** The exit status in the guest's "WGJIT-VM-EXIT <nonce> <status>" console line, if any. */
export function parseExitMarker(output: string, nonce: string): number | null {
  let found: number | null = null;
  for (const line of output.split('\n')) {
    const m = /^WGJIT-VM-EXIT (\S+) (\d+)\r?$/.exec(line);
    if (m && m[1] === nonce) found = Number(m[2]);
  }
  return found;
}

/** The guest's uptime when the command started, from init's "up after N s" line. */
export function parseBootSeconds(output: string): number | null {
  const m = /^wgjit-vm: up after ([\d.]+) s/m.exec(output);
  return m ? Number(m[1]) : null;
}

// ------------------------------------------------------------ host checks

export interface Kernel {
  release: string;
  vmlinuz: string;
}

function dpkgField(pkg: string, field: string): string | null {
  try {
    return execFileSync('dpkg-query', ['-W', `-f=\${${field}}`, pkg], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return null;
  }
}

function installed(pkg: string): boolean {
  return (dpkgField(pkg, 'Status') ?? '').includes('install ok installed');
}

function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '/usr/bin:/bin').split(':').some((d) => d !== '' && existsSync(join(d, cmd)));
}

/**
 * The kernel linux-image-amd64 installed (asked of dpkg, not globbed from
 * /boot: other kernels may sit there), or why there is none.
 */
export function findKernel(): Kernel | string {
  if (!installed('linux-image-amd64')) return 'linux-image-amd64 is not installed';
  const release = kernelFromDepends(dpkgField('linux-image-amd64', 'Depends') ?? '');
  if (release === null) return 'cannot tell which kernel linux-image-amd64 depends on';
  if (!installed(`linux-image-${release}`)) return `linux-image-${release} is not installed`;
  const vmlinuz = `/boot/vmlinuz-${release}`;
  if (!existsSync(vmlinuz)) return `${vmlinuz} is missing`;
  if (!existsSync(`/lib/modules/${release}/modules.dep`)) return `/lib/modules/${release} is missing`;
  return { release, vmlinuz };
}

/** null when runInVm can work here, else a one-line reason to skip. */
export function vmAvailable(): string | null {
  if (process.platform !== 'linux' || process.arch !== 'x64') return `the test VM needs x86-64 Linux (have ${process.platform}/${process.arch})`;
  if (!onPath(QEMU)) return `${QEMU} not found (install qemu-system-x86)`;
  if (!installed('busybox-static')) return 'busybox-static is not installed';
  for (const cmd of ['modprobe', 'cpio']) if (!onPath(cmd) && !existsSync(`/sbin/${cmd}`)) return `${cmd} not found`;
  const kernel = findKernel();
  if (typeof kernel === 'string') return kernel;
  return null;
}

// -------------------------------------------------------------- initramfs

/** The initramfs for `release`, built (once per kernel and script version) under build/vm/. */
export async function ensureInitramfs(release: string): Promise<string> {
  const hash = createHash('sha256');
  hash.update(release).update('\0').update(readFileSync(BUILD_SCRIPT)).update('\0').update(readFileSync(INIT_SCRIPT));
  const name = `initramfs-${release}-${hash.digest('hex').slice(0, 16)}.cpio`;
  const path = join(VM_BUILD_DIR, name);
  if (existsSync(path)) return path;
  mkdirSync(VM_BUILD_DIR, { recursive: true });
  await run(BUILD_SCRIPT, [release, path], { timeoutMs: 120_000 });
  for (const old of readdirSync(VM_BUILD_DIR)) {
    if (old !== name && /^initramfs-.*\.cpio$/.test(old)) {
      try {
        unlinkSync(join(VM_BUILD_DIR, old));
      } catch {
        // another run pruned it first
      }
    }
  }
  return path;
}

// ----------------------------------------------------------------- runInVm

export interface VmRunOptions {
  /** argv of the command, looked up on the guest's PATH. */
  command: readonly string[];
  /** Working directory in the guest; a host path the guest sees (default: process.cwd()). */
  cwd?: string;
  /** Kill the VM and fail after this long (default VM_DEFAULT_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Added to (and overriding) the guest's base environment (PATH, HOME=/tmp/home, WGJIT_IN_VM=1, ...). */
  env?: Readonly<Record<string, string>>;
  /** Each chunk of console output (and qemu's stderr) as it arrives. */
  onOutput?: (chunk: string) => void;
  memoryMiB?: number;
  cpus?: number;
}

export interface VmRunResult {
  /** The guest command's exit status (128+N when killed by signal N). */
  code: number;
  /** All console output, "\r\n" turned into "\n". */
  output: string;
  /** Guest uptime when the command started, if init reported it. */
  bootSeconds: number | null;
  /** From starting qemu to its exit. */
  wallMs: number;
}

/** The VM could not run the command to the end: no qemu, setup failure, timeout. */
export class VmError extends Error {
  constructor(
    message: string,
    readonly output: string,
  ) {
    super(message);
    this.name = 'VmError';
  }
}

function tail(output: string, lines = 20): string {
  return output.trimEnd().split('\n').slice(-lines).join('\n');
}

/**
 * Boots the VM, runs `command` in it and resolves with its exit status once
 * the VM is off. Rejects with VmError if the VM cannot run it or does not
 * finish within the timeout (the VM is killed then). The VM is killed too if
 * this process exits or gets SIGINT/SIGTERM.
 */
export async function runInVm(opts: VmRunOptions): Promise<VmRunResult> {
  const unavailable = vmAvailable();
  if (unavailable !== null) throw new VmError(`test VM unavailable: ${unavailable}`, '');
  const kernel = findKernel() as Kernel;
  const cwd = resolve(opts.cwd ?? process.cwd());
  // A checkout under /tmp (CI clones there) is shared on its own and mounted
  // over the guest's tmpfs at the same path.
  const hiddenDir = visibleInGuest(cwd) ? undefined : cwd;
  if (hiddenDir !== undefined && ['/proc', '/sys', '/dev'].some((d) => hiddenDir === d || hiddenDir.startsWith(`${d}/`))) {
    throw new VmError(`${cwd} cannot be the working directory in the VM (it mounts its own ${HIDDEN_IN_GUEST.join(', ')})`, '');
  }
  const timeoutMs = opts.timeoutMs ?? VM_DEFAULT_TIMEOUT_MS;

  let initrd: string;
  try {
    initrd = await ensureInitramfs(kernel.release);
  } catch (err) {
    throw new VmError(`could not build the initramfs: ${(err as Error).message}`, '');
  }
  const ioDir = mkdtempSync(join(tmpdir(), 'wgjit-vm-'));
  const removeIoDir = () => rmSync(ioDir, { recursive: true, force: true });
  const unregister = onExit(removeIoDir);
  try {
    const nonce = randomBytes(12).toString('hex');
    writeFileSync(join(ioDir, 'nonce'), `${nonce}\n`);
    if (hiddenDir !== undefined) writeFileSync(join(ioDir, 'hidden-dir'), `${hiddenDir}\n`);
    writeFileSync(join(ioDir, 'command'), commandScript({ command: opts.command, cwd, env: { ...GUEST_BASE_ENV, ...opts.env } }));

    let raw = '';
    const collect = (chunk: string) => {
      raw += chunk;
      opts.onOutput?.(chunk);
    };
    const started = Date.now();
    let vm;
    try {
      vm = spawnIn(
        null,
        QEMU,
        qemuArgs({ kernel: kernel.vmlinuz, initrd, ioDir, hiddenDir, memoryMiB: opts.memoryMiB ?? VM_DEFAULT_MEMORY_MIB, cpus: opts.cpus ?? VM_DEFAULT_CPUS }),
        { onStdout: collect, onStderr: collect },
      );
    } catch (err) {
      throw new VmError(`could not start ${QEMU}: ${(err as Error).message}`, '');
    }
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      void vm.kill();
    }, timeoutMs);
    const { code: qemuCode, signal } = await vm.exited;
    clearTimeout(timer);
    const wallMs = Date.now() - started;
    const output = raw.replace(/\r\n/g, '\n');

    if (timedOut) {
      throw new VmError(`test VM did not finish within ${Math.round(timeoutMs / 1000)} s; killed it.\nLast output:\n${tail(output)}`, output);
    }
    const statusFile = join(ioDir, 'status');
    const fromFile = existsSync(statusFile) ? Number.parseInt(readFileSync(statusFile, 'utf8'), 10) : Number.NaN;
    const code = Number.isInteger(fromFile) ? fromFile : parseExitMarker(output, nonce);
    if (code === null) {
      const how = signal !== null ? `was killed by ${signal}` : `exited with ${String(qemuCode)}`;
      throw new VmError(`test VM ${how} without reporting the command's status.\nLast output:\n${tail(output)}`, output);
    }
    return { code, output, bootSeconds: parseBootSeconds(output), wallMs };
  } finally {
    removeIoDir();
    unregister();
  }
}
