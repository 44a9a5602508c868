// The echo workload as a Shardless application: each session message is a task that sends it back.
import { managed, type AppListener, type ClientSession, type ClientSessionListener, type Ref, type TaskContext } from "shardless";

@managed("bench.Echoer")
export class Echoer implements ClientSessionListener {
  constructor(private readonly session: Ref<ClientSession>) {}

  receivedMessage(_ctx: TaskContext, message: Uint8Array): void {
    this.session.get().send(message);
  }

  disconnected(ctx: TaskContext): void {
    ctx.data.removeObject(this);
  }
}

@managed("bench.EchoApp")
export default class EchoApp implements AppListener {
  initialize(): void {}

  loggedIn(ctx: TaskContext, session: ClientSession): ClientSessionListener {
    return new Echoer(ctx.data.createReference(session));
  }
}
