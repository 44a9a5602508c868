// A system under test in its own process, driven over IPC by the benchmark runner.
import { startSystem, type RunningSystem, type SystemOptions } from "./system.ts";

type Command = { cmd: "start"; options: SystemOptions } | { cmd: "total" } | { cmd: "stats" } | { cmd: "cpuTimeline" } | { cmd: "stop" };

/** A CPU sample: wall-clock time and this process's CPU milliseconds so far. */
export interface CpuSample {
  readonly at: number;
  readonly cpuMs: number;
}

let system: RunningSystem | undefined;
let cpuAtStart = process.cpuUsage();
const timeline: CpuSample[] = [];
const sampleCpu = () => {
  const cpu = process.cpuUsage();
  timeline.push({ at: Date.now(), cpuMs: (cpu.user + cpu.system) / 1000 });
};
// Stepped runs (the room workload) need the server's CPU per step: sampled here, matched by time.
setInterval(sampleCpu, 250).unref();

process.on("message", (command: Command) => {
  void handle(command).then((reply) => process.send!(reply));
});

async function handle(command: Command): Promise<unknown> {
  switch (command.cmd) {
    case "start":
      system = await startSystem(command.options);
      return { ready: true, port: system.port };
    case "total":
      return { total: await system!.total() };
    case "stats": {
      const cpu = process.cpuUsage(cpuAtStart);
      cpuAtStart = process.cpuUsage();
      return { cpuMs: (cpu.user + cpu.system) / 1000, counters: system!.counters() };
    }
    case "cpuTimeline":
      sampleCpu();
      return { timeline };
    case "stop":
      await system?.stop();
      setImmediate(() => process.exit(0));
      return { stopped: true };
  }
}
