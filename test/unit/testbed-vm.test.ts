import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  commandScript,
  kernelFromDepends,
  parseBootSeconds,
  parseExitMarker,
  qemuArgs,
  shellQuote,
  visibleInGuest,
} from '../../harness/testbed/vm.js';

describe('test VM: pure parts', () => {
  it('takes the kernel release from linux-image-amd64 Depends', () => {
    expect(kernelFromDepends('linux-image-6.1.0-56-amd64 (= 6.1.192-2)')).toBe('6.1.0-56-amd64');
    expect(kernelFromDepends('linux-image-6.1.0-56-amd64')).toBe('6.1.0-56-amd64');
    expect(kernelFromDepends('foo, linux-image-6.1.0-9-amd64 (= 6.1.27-1) | bar')).toBe('6.1.0-9-amd64');
    expect(kernelFromDepends('')).toBeNull();
    expect(kernelFromDepends('linux-image-amd64-signed-template')).toBeNull();
  });

  it('parses only the exit marker with its own nonce, the last one winning', () => {
    const out = [
      'wgjit-vm: up after 4.10 s; running the command',
      'WGJIT-VM-EXIT forged 0',
      'WGJIT-VM-EXIT abc 1\r',
      'echo WGJIT-VM-EXIT abc 9',
      'WGJIT-VM-EXIT abc 3\r',
      '[    6.79] reboot: Power down',
    ].join('\n');
    expect(parseExitMarker(out, 'abc')).toBe(3);
    expect(parseExitMarker(out, 'nope')).toBeNull();
    expect(parseExitMarker('WGJIT-VM-EXIT abc x', 'abc')).toBeNull();
    expect(parseBootSeconds(out)).toBe(4.1);
    expect(parseBootSeconds('nothing')).toBeNull();
  });

  it('knows which host paths the guest hides', () => {
    expect(visibleInGuest('/work/main')).toBe(true);
    expect(visibleInGuest('/tmpfoo')).toBe(true);
    expect(visibleInGuest('/tmp')).toBe(false);
    expect(visibleInGuest('/tmp/x')).toBe(false);
    expect(visibleInGuest('/run/user/0')).toBe(false);
    expect(visibleInGuest('/var/tmp/x')).toBe(false);
  });

  it('builds a TCG-only qemu command line with the root shared read-only', () => {
    const args = qemuArgs({ kernel: '/boot/vmlinuz-X', initrd: '/r/i.cpio', ioDir: '/tmp/io', memoryMiB: 2048, cpus: 2 });
    const after = (flag: string) => args.filter((_, i) => args[i - 1] === flag);
    expect(after('-accel')).toEqual(['tcg,thread=multi']);
    expect(args.join(' ')).not.toMatch(/kvm/);
    expect(after('-smp')).toEqual(['2']);
    expect(after('-m')).toEqual(['2048']);
    expect(after('-kernel')).toEqual(['/boot/vmlinuz-X']);
    expect(after('-initrd')).toEqual(['/r/i.cpio']);
    const virtfs = after('-virtfs');
    expect(virtfs).toHaveLength(2);
    expect(virtfs[0]).toMatch(/^local,path=\/,mount_tag=hostroot,.*readonly=on/);
    expect(virtfs[1]).toMatch(/^local,path=\/tmp\/io,mount_tag=wgjitio,/);
    expect(virtfs[1]).not.toMatch(/readonly/);
    expect(() => qemuArgs({ kernel: 'k', initrd: 'i', ioDir: '/tmp/a,b', memoryMiB: 1, cpus: 1 })).toThrow(/comma/);
  });

  it('shares a working directory the guest would hide (a checkout under /tmp) read-only, as a third share', () => {
    const args = qemuArgs({ kernel: 'k', initrd: 'i', ioDir: '/tmp/io', hiddenDir: '/tmp/ci-checkout', memoryMiB: 1, cpus: 1 });
    const virtfs = args.filter((_, i) => args[i - 1] === '-virtfs');
    expect(virtfs).toHaveLength(3);
    expect(virtfs[2]).toMatch(/^local,path=\/tmp\/ci-checkout,mount_tag=wgjitcwd,.*readonly=on/);
    expect(() => qemuArgs({ kernel: 'k', initrd: 'i', ioDir: '/tmp/io', hiddenDir: '/tmp/a,b', memoryMiB: 1, cpus: 1 })).toThrow(/comma/);
  });

  it('quotes words so the shell gives them back unchanged', () => {
    const words = ['plain', 'with space', "it's", '$HOME', '`x`', '"q"', 'a\\b', '', '*', 'new\nline', 'é'];
    const script = `printf '%s\\0' ${words.map(shellQuote).join(' ')}`;
    const out = execFileSync('/bin/sh', ['-c', script], { encoding: 'utf8' });
    expect(out.split('\0').slice(0, -1)).toEqual(words);
    expect(shellQuote('a/b.c-d')).toBe('a/b.c-d');
  });

  it('writes a command script that runs the argv in exactly the given cwd and environment', () => {
    const script = commandScript({
      command: ['sh', '-c', 'pwd; env | sort; printf "<%s>" "$@"', 'argv0', 'two words', "qu'ote"],
      cwd: '/',
      env: { PATH: '/usr/bin:/bin', A_B: 'x y', EMPTY: '' },
    });
    const out = execFileSync('/bin/sh', ['-c', script], { encoding: 'utf8', env: { LEAK: 'no', PATH: '/usr/bin:/bin' } });
    expect(out).toBe(['/', 'A_B=x y', 'EMPTY=', 'PATH=/usr/bin:/bin', 'PWD=/', "<two words><qu'ote>"].join('\n'));
    expect(() => commandScript({ command: [], cwd: '/', env: {} })).toThrow(/empty/);
    expect(() => commandScript({ command: ['x'], cwd: '/', env: { 'BAD-NAME': '1' } })).toThrow(/invalid/);
    expect(() => commandScript({ command: ['A=b'], cwd: '/', env: {} })).toThrow(/=/);
  });
});
