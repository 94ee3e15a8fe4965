/**
 * The demo's entry: bin/wgjit runs `wgjit demo` here, through tsx, from the
 * checkout (the product's dist/ carries no harness). `wgjit demo --help`
 * stays with the product CLI, which owns every help page.
 */
import { runDemo } from './demo.js';

const code = await runDemo();
// As src/cli.ts: exit once stdout has flushed, whatever handles are left open.
process.stdout.write('', () => process.exit(code));
