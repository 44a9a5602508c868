/**
 * Hello, channels: every session joins two channels at login. "Foo" has no listener, so what a
 * member sends on it goes to every member as it is. "Bar" has a listener that sees each message
 * first and forwards it; a real game would check or change it there. Session messages are echoed.
 */
import {
  Delivery,
  managed,
  type AppListener,
  type Channel,
  type ChannelListener,
  type ClientSession,
  type ClientSessionListener,
  type Ref,
  type TaskContext,
} from "shardless";

@managed("hello.channels.BarListener")
export class BarListener implements ChannelListener {
  forwarded = 0;

  receivedMessage(ctx: TaskContext, channel: Channel, sender: ClientSession, message: Uint8Array): void {
    this.forwarded++;
    channel.send(message, sender);
  }
}

@managed("hello.channels.Player")
export class Player implements ClientSessionListener {
  constructor(private readonly session: Ref<ClientSession>) {}

  receivedMessage(ctx: TaskContext, message: Uint8Array): void {
    this.session.get().send(message);
  }

  disconnected(ctx: TaskContext): void {
    ctx.data.removeObject(this); // the session leaves its channels by itself
  }
}

@managed("hello.channels.App")
export default class HelloChannels implements AppListener {
  initialize(ctx: TaskContext): void {
    ctx.channels.createChannel("Foo", null, Delivery.RELIABLE);
    ctx.channels.createChannel("Bar", new BarListener(), Delivery.RELIABLE);
  }

  loggedIn(ctx: TaskContext, session: ClientSession): ClientSessionListener {
    ctx.channels.getChannel("Foo").join(session);
    ctx.channels.getChannel("Bar").join(session);
    return new Player(ctx.data.createReference(session));
  }
}
