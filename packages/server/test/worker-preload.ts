// The first module a worker thread of a test's server imports (see test-workers.ts). The worker
// then imports the test file itself to learn the classes it defines inline; this loader hook makes
// `node:test` resolve to a module of no-ops there, so that import defines the classes and runs no
// test, registers no hook and schedules nothing.
import { register } from "node:module";

const NO_OP_TEST = `
const noop = () => undefined;
const suite = Object.assign(noop, { skip: noop, todo: noop, only: noop });
export const describe = suite, it = suite, test = suite;
export { suite };
export const before = noop, after = noop, beforeEach = noop, afterEach = noop, run = noop;
export const mock = new Proxy({}, { get: () => noop });
export default test;
`;

const HOOKS = `
const stub = ${JSON.stringify(`data:text/javascript,${encodeURIComponent(NO_OP_TEST)}`)};
export async function resolve(specifier, context, next) {
  if (specifier === "node:test") return { url: stub, shortCircuit: true };
  return next(specifier, context);
}
`;

register(`data:text/javascript,${encodeURIComponent(HOOKS)}`);
