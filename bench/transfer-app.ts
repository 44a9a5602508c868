// The transfer workload as a Shardless application: accounts are managed objects, each transfer one
// task, requested over a session and answered when it commits. Worker threads import this module to
// know its classes.
import { managed, type AppListener, type ClientSession, type ClientSessionListener, type Ref, type Task, type TaskContext } from "shardless";
import { INITIAL_BALANCE, decodeRequest, encodeReply } from "./workload.ts";

@managed("bench.Account")
export class Account {
  constructor(public balance: number) {}
}

/** Moves `amount` between two accounts inside the current task; false if funds are short. */
export function transfer(ctx: TaskContext, from: number, to: number, amount: number): boolean {
  const source = ctx.data.getBinding<Account>(`acct.${from}`);
  const target = ctx.data.getBinding<Account>(`acct.${to}`);
  if (source.balance < amount) return false;
  source.balance -= amount;
  target.balance += amount;
  return true;
}

/**
 * One transfer as a task object, for `Server.runTask`: unlike a closure, it is data that a worker
 * thread can run. `run` returns what {@link transfer} returned.
 */
@managed("bench.TransferTask")
export class TransferTask implements Task {
  constructor(
    readonly from: number,
    readonly to: number,
    readonly amount: number,
  ) {}

  run(ctx: TaskContext): boolean {
    return transfer(ctx, this.from, this.to, this.amount);
  }
}

/** The sum of every balance (run with no time limit). */
export function totalBalance(ctx: TaskContext, accounts: number): number {
  let total = 0;
  for (let i = 0; i < accounts; i++) total += ctx.data.getBinding<Account>(`acct.${i}`).balance;
  return total;
}

@managed("bench.Teller")
export class Teller implements ClientSessionListener {
  constructor(private readonly session: Ref<ClientSession>) {}

  receivedMessage(ctx: TaskContext, message: Uint8Array): void {
    const request = decodeRequest(message);
    this.session.get().send(encodeReply(request.requestId, transfer(ctx, request.from, request.to, request.amount)));
  }

  disconnected(ctx: TaskContext): void {
    ctx.data.removeObject(this);
  }
}

@managed("bench.Bank")
export default class Bank implements AppListener {
  initialize(ctx: TaskContext, props: Readonly<Record<string, string>>): void {
    const accounts = Number(props.accounts ?? "100000");
    for (let i = 0; i < accounts; i++) ctx.data.setBinding(`acct.${i}`, new Account(INITIAL_BALANCE));
  }

  loggedIn(ctx: TaskContext, session: ClientSession): ClientSessionListener {
    return new Teller(ctx.data.createReference(session));
  }
}
