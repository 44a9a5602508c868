/**
 * Hello, echo: every message a client sends comes straight back to it. Each player is a managed
 * object that counts what it echoed; the count survives restarts like everything else.
 */
import { managed, type AppListener, type ClientSession, type ClientSessionListener, type Ref, type TaskContext } from "shardless";

@managed("hello.echo.Player")
export class Player implements ClientSessionListener {
  echoed = 0;

  constructor(private readonly session: Ref<ClientSession>) {}

  receivedMessage(ctx: TaskContext, message: Uint8Array): void {
    this.echoed++;
    this.session.get().send(message); // leaves only if this task commits
  }

  disconnected(ctx: TaskContext, graceful: boolean): void {
    ctx.log.info(`${this.session.get().name} left ${graceful ? "(logged out)" : "(connection lost)"} after ${this.echoed} echoes`);
    ctx.data.removeObject(this);
  }
}

@managed("hello.echo.App")
export default class HelloEcho implements AppListener {
  initialize(): void {}

  loggedIn(ctx: TaskContext, session: ClientSession): ClientSessionListener {
    ctx.log.info(`${session.name} logged in`);
    return new Player(ctx.data.createReference(session));
  }
}
