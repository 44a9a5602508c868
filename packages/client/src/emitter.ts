type Listener = (...args: unknown[]) => void;

/** Reports an error the way a DOM event listener's is: uncaught, without stopping the caller. */
function rethrowLater(error: unknown): void {
  setTimeout(() => {
    throw error;
  }, 0);
}

/** A small typed event emitter (browsers have no node:events). */
export class Emitter<Events extends Record<string, unknown[]>> {
  private readonly listeners = new Map<keyof Events, Set<Listener>>();

  /** @param reportError receives what a listener throws; by default it is rethrown as uncaught. */
  constructor(private readonly reportError: (error: unknown) => void = rethrowLater) {}

  /** Calls `listener` for every `event`; returns a function that removes it. */
  on<E extends keyof Events>(event: E, listener: (...args: Events[E]) => void): () => void {
    let set = this.listeners.get(event);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener as unknown as Listener);
    return () => this.off(event, listener);
  }

  /** Removes a listener added with {@link on}. */
  off<E extends keyof Events>(event: E, listener: (...args: Events[E]) => void): void {
    this.listeners.get(event)?.delete(listener as unknown as Listener);
  }

  /**
   * Calls every listener of `event`. A listener that throws does not stop the others, nor the
   * session: its error is reported the way a DOM event listener's is, as an uncaught error.
   */
  protected emit<E extends keyof Events>(event: E, ...args: Events[E]): void {
    for (const listener of [...(this.listeners.get(event) ?? [])]) {
      try {
        listener(...args);
      } catch (error) {
        this.reportError(error);
      }
    }
  }
}
