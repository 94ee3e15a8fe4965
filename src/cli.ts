#!/usr/bin/env node
import { main } from './cli/main.js';

const code = await main(process.argv.slice(2));
// `run` and `api` resolve only once they have stopped; exit then so open
// handles left by libraries cannot keep the process alive.
process.exit(code);
