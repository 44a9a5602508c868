// The first module of a worker thread. Shardless runs from its TypeScript sources, and a worker
// thread does not inherit the loader its parent registered, so it registers its own before loading
// the worker proper.
import { register } from "tsx/esm/api";

register();
await import("./worker-main.ts");
