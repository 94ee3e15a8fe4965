#!/usr/bin/env node
import { main } from './cli/main.js';

const code = await main(process.argv.slice(2));
// `run` and `api` resolve only once they have stopped; exit then so open
// handles left by libraries cannot keep the process alive. Not before
// stdout has flushed: into a pipe, process.exit would cut a long output
// (`status --json` of thousands of peers) short.
process.stdout.write('', () => process.exit(code));
