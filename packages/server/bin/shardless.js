#!/usr/bin/env node
// Entry point of the `shardless` command. It registers the TypeScript loader first, so that the
// command itself and the application module it starts (TypeScript with decorators, or JavaScript)
// load without a build step.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli/main.ts");
process.exit(await main(process.argv.slice(2)));
