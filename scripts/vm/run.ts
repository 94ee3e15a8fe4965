/**
 * Runs one command inside wgjit's real-kernel test VM and exits with its
 * status. See docs/testing.md.
 *
 *   npx tsx scripts/vm/run.ts [options] -- COMMAND [ARG...]
 *
 * Options:
 *   --timeout SECONDS        kill the VM after this long (default 900)
 *   --cwd DIR                working directory in the guest (default: this one)
 *   --env NAME=VALUE         set in the guest's environment (repeatable)
 *   --cpus N, --memory MIB   VM size (default 2 vCPUs, 2048 MiB)
 *   --skip-if-unavailable    if qemu or the kernel package is missing, say
 *                            why on one line and exit 0 (for make test-vm)
 */
import { parseArgs } from 'node:util';
import { runInVm, vmAvailable, VmError, VM_DEFAULT_TIMEOUT_MS } from '../../harness/testbed/vm.js';

const USAGE = 'usage: npx tsx scripts/vm/run.ts [--timeout S] [--cwd DIR] [--env K=V]... [--cpus N] [--memory MIB] [--skip-if-unavailable] -- COMMAND [ARG...]';

function fail(message: string, code = 2): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

function positiveInt(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) fail(`--${name} wants a positive integer, not ${JSON.stringify(value)}\n${USAGE}`);
  return n;
}

const { values, positionals } = (() => {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        timeout: { type: 'string' },
        cwd: { type: 'string' },
        env: { type: 'string', multiple: true },
        cpus: { type: 'string' },
        memory: { type: 'string' },
        'skip-if-unavailable': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    return fail(`${(err as Error).message}\n${USAGE}`);
  }
})();
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (positionals.length === 0) fail(USAGE);

const env: Record<string, string> = {};
// The guest command writes to a pipe; colour it when we write to a terminal.
if (process.stdout.isTTY && process.env.NO_COLOR === undefined) env.FORCE_COLOR = '1';
for (const kv of values.env ?? []) {
  const eq = kv.indexOf('=');
  if (eq <= 0) fail(`--env wants NAME=VALUE, not ${JSON.stringify(kv)}`);
  env[kv.slice(0, eq)] = kv.slice(eq + 1);
}

const unavailable = vmAvailable();
if (unavailable !== null) {
  if (values['skip-if-unavailable']) {
    process.stdout.write(`wgjit: skipping the VM tests: ${unavailable}\n`);
    process.exit(0);
  }
  fail(`wgjit: test VM unavailable: ${unavailable}`, 1);
}

const timeoutS = positiveInt('timeout', values.timeout);
try {
  const result = await runInVm({
    command: positionals,
    ...(values.cwd !== undefined && { cwd: values.cwd }),
    env,
    timeoutMs: timeoutS !== undefined ? timeoutS * 1000 : VM_DEFAULT_TIMEOUT_MS,
    ...(values.cpus !== undefined && { cpus: positiveInt('cpus', values.cpus)! }),
    ...(values.memory !== undefined && { memoryMiB: positiveInt('memory', values.memory)! }),
    onOutput: (chunk) => process.stdout.write(chunk),
  });
  const boot = result.bootSeconds !== null ? `, guest up after ${result.bootSeconds.toFixed(1)} s` : '';
  process.stderr.write(`wgjit-vm: command exited with ${result.code} (VM ran ${(result.wallMs / 1000).toFixed(1)} s${boot})\n`);
  process.exit(result.code);
} catch (err) {
  // The console output the message ends with has streamed by already.
  if (err instanceof VmError) fail(`wgjit-vm: ${err.message.split('\nLast output:')[0]}`, 1);
  throw err;
}
