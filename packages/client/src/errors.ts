/** Base class of the SDK's errors; `code` is stable. */
export class ClientError extends Error {
  constructor(
    readonly code: "ERR_CLIENT_LOGIN_FAILED" | "ERR_CLIENT_CONNECT" | "ERR_CLIENT_CLOSED" | "ERR_CLIENT_PROTOCOL" | "ERR_CLIENT_ARGUMENT",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The server refused the login (`reason` is what it said: usually just "login refused"). */
export class LoginFailedError extends ClientError {
  constructor(readonly reason: string) {
    super("ERR_CLIENT_LOGIN_FAILED", `login failed: ${reason}`);
  }
}

/** The connection could not be opened, or closed before the login completed. */
export class ConnectError extends ClientError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ERR_CLIENT_CONNECT", message, options);
  }
}

/** An operation on a session that has ended. */
export class SessionClosedError extends ClientError {
  constructor() {
    super("ERR_CLIENT_CLOSED", "the session has ended");
  }
}
