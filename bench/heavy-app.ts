// The transfer workload with game logic that costs CPU: each transfer also does `work` rounds of
// arithmetic, standing for the path-finding, physics or rules checks of a real game's handler.
import { managed, type Task, type TaskContext } from "shardless";
import { transfer } from "./transfer-app.ts";

export { default } from "./transfer-app.ts";

@managed("bench.HeavyTransfer")
export class HeavyTransfer implements Task {
  constructor(
    readonly from: number,
    readonly to: number,
    readonly work: number,
  ) {}

  run(ctx: TaskContext): boolean {
    let sum = 0;
    for (let round = 0; round < this.work; round++) sum += Math.sqrt(round);
    // The result is used, so that the rounds cannot be optimised away; it is never negative.
    return sum >= 0 && transfer(ctx, this.from, this.to, 1);
  }
}
