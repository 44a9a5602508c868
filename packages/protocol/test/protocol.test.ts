import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  FrameReader,
  MAX_PAYLOAD_BYTES,
  ProtocolError,
  decodeChannelId,
  decodeClientMessage,
  decodeServerMessage,
  encodeChannelId,
  encodeFrame,
  encodeMessage,
  readModifiedUtf8,
  writeModifiedUtf8,
  modifiedUtf8Length,
  type ClientMessage,
  type Message,
  type ServerMessage,
} from "@shardless/protocol";

const hex = (bytes: Uint8Array) => [...bytes].map((byte) => byte.toString(16).padStart(2, "0").toUpperCase()).join(" ");
const bytes = (text: string) => Uint8Array.from(text.split(" ").map((pair) => Number.parseInt(pair, 16)));
const frameOf = (message: Message) => hex(encodeFrame(encodeMessage(message)));
const ascii = (text: string) => new TextEncoder().encode(text);

describe("protocol: the worked examples of PROTOCOL.md, byte for byte", () => {
  const key = Uint8Array.from({ length: 16 }, (_, i) => i + 0xa0);

  it("login request", () => {
    assert.equal(frameOf({ op: "LOGIN_REQUEST", version: 5, name: "bob", password: "pw" }), "00 0B 10 05 00 03 62 6F 62 00 02 70 77");
    assert.deepEqual(decodeClientMessage(bytes("10 05 00 03 62 6F 62 00 02 70 77")), { op: "LOGIN_REQUEST", version: 5, name: "bob", password: "pw" });
  });

  it("login success with a 16-byte key", () => {
    assert.equal(frameOf({ op: "LOGIN_SUCCESS", reconnectKey: key }), `00 11 11 ${hex(key)}`);
  });

  it("redirect", () => {
    assert.equal(frameOf({ op: "LOGIN_REDIRECT", host: "node2", port: 1139 }), "00 0C 13 00 05 6E 6F 64 65 32 00 00 04 73");
  });

  it("channel join, leave and message, and session message", () => {
    assert.equal(frameOf({ op: "CHANNEL_JOIN", channelName: "Foo", channelId: 5n }), "00 07 50 00 03 46 6F 6F 05");
    assert.equal(frameOf({ op: "CHANNEL_LEAVE", channelId: 5n }), "00 02 51 05");
    assert.equal(frameOf({ op: "CHANNEL_MESSAGE", channelId: 5n, message: ascii("hi") }), "00 06 52 00 01 05 68 69");
    assert.equal(frameOf({ op: "SESSION_MESSAGE", message: ascii("hi") }), "00 03 30 68 69");
  });

  it("logout", () => {
    assert.equal(frameOf({ op: "LOGOUT_REQUEST" }), "00 01 40");
    assert.equal(frameOf({ op: "LOGOUT_SUCCESS" }), "00 01 41");
  });
});

describe("protocol: field encodings", () => {
  it("writes modified UTF-8 as Java's writeUTF does", () => {
    const encode = (text: string) => {
      const out = new Uint8Array(modifiedUtf8Length(text));
      writeModifiedUtf8(text, out, 0);
      return hex(out);
    };
    assert.equal(encode("A"), "41");
    assert.equal(encode("\u0000"), "C0 80", "NUL takes two bytes");
    assert.equal(encode("\u00e9"), "C3 A9");
    assert.equal(encode("\u20ac"), "E2 82 AC");
    assert.equal(encode("\u{1F600}"), "ED A0 BD ED B8 80", "astral characters as two 3-byte surrogates");
    assert.equal(readModifiedUtf8(bytes("ED A0 BD ED B8 80"), 0, 6), "\u{1F600}");
    assert.equal(readModifiedUtf8(bytes("C0 80 41"), 0, 3), "\u0000A");
  });

  it("refuses malformed modified UTF-8 with a protocol error", () => {
    for (const bad of ["80", "C3", "E2 82", "F0 9F 98 80", "C3 41", "FF"]) {
      const input = bytes(bad);
      assert.throws(() => readModifiedUtf8(input, 0, input.length), (error: unknown) => error instanceof ProtocolError && error.reason === "malformed-string", bad);
    }
  });

  it("encodes channel ids as BigInteger.toByteArray and decodes them as unsigned numbers", () => {
    assert.equal(hex(encodeChannelId(0n)), "00");
    assert.equal(hex(encodeChannelId(5n)), "05");
    assert.equal(hex(encodeChannelId(127n)), "7F");
    assert.equal(hex(encodeChannelId(128n)), "00 80");
    assert.equal(hex(encodeChannelId(200n)), "00 C8");
    assert.equal(hex(encodeChannelId(2n ** 64n - 1n)), "00 FF FF FF FF FF FF FF FF");
    assert.equal(decodeChannelId(bytes("00 00 05")), 5n, "leading zeros are ignored");
    assert.equal(decodeChannelId(bytes("C8")), 200n, "a client's re-encoding without the sign byte is the same id");
    assert.throws(() => decodeChannelId(new Uint8Array(0)), ProtocolError);
    assert.throws(() => encodeChannelId(-1n), RangeError);
  });
});

describe("protocol: decoding refuses what is not a valid message", () => {
  const refuses = (payload: string, reason: string, decode: (bytes: Uint8Array) => unknown = decodeClientMessage) =>
    assert.throws(() => decode(bytes(payload)), (error: unknown) => error instanceof ProtocolError && error.reason === reason, `${payload} → ${reason}`);

  it("names each kind of malformed payload", () => {
    assert.throws(() => decodeClientMessage(new Uint8Array(0)), (error: unknown) => error instanceof ProtocolError && error.reason === "empty-frame");
    refuses("99", "unknown-opcode");
    refuses("11 00", "wrong-direction", decodeClientMessage);
    refuses("50 00 01 41 05", "wrong-direction", decodeClientMessage);
    refuses("10 05 00 03 62 6F", "truncated");
    refuses("10", "truncated");
    refuses("10 05 00 01 62 00 00 FF", "trailing-bytes");
    refuses("40 00", "trailing-bytes");
    refuses("52 00 05 01", "truncated");
    refuses("52 00 00 68 69", "empty-channel-id");
    refuses("10 05 00 01 FF 00 00", "malformed-string");
    refuses("10 05 00 00 00 00", "wrong-direction", decodeServerMessage);
  });

  it("returns byte arrays that end the payload as views, and keeps the version byte for the caller to check", () => {
    const decoded = decodeClientMessage(bytes("18 04 AA BB"));
    assert.deepEqual(decoded, { op: "RELOCATE_REQUEST", version: 4, relocationKey: bytes("AA BB") });
  });
});

const byteArray = (maxLength = 64) => fc.uint8Array({ maxLength });
const text = fc.string({ unit: "binary", maxLength: 40 });
const version = fc.integer({ min: 0, max: 255 });
const channelId = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
const port = fc.integer({ min: -0x80000000, max: 0x7fffffff });

const clientMessage: fc.Arbitrary<ClientMessage> = fc.oneof(
  fc.record({ op: fc.constant("LOGIN_REQUEST" as const), version, name: text, password: text }),
  fc.constant({ op: "SUSPEND_MESSAGES_COMPLETE" as const }),
  fc.record({ op: fc.constant("RELOCATE_REQUEST" as const), version, relocationKey: byteArray() }),
  fc.record({ op: fc.constant("RECONNECT_REQUEST" as const), version, reconnectKey: byteArray() }),
  fc.record({ op: fc.constant("SESSION_MESSAGE" as const), message: byteArray(300) }),
  fc.constant({ op: "LOGOUT_REQUEST" as const }),
  fc.record({ op: fc.constant("CHANNEL_MESSAGE" as const), channelId, message: byteArray() }),
);

const serverMessage: fc.Arbitrary<ServerMessage> = fc.oneof(
  fc.record({ op: fc.constant("LOGIN_SUCCESS" as const), reconnectKey: byteArray() }),
  fc.record({ op: fc.constant("LOGIN_FAILURE" as const), reason: text }),
  fc.record({ op: fc.constant("LOGIN_REDIRECT" as const), host: text, port }),
  fc.constant({ op: "SUSPEND_MESSAGES" as const }),
  fc.constant({ op: "RESUME_MESSAGES" as const }),
  fc.record({ op: fc.constant("RELOCATE_NOTIFICATION" as const), host: text, port, relocationKey: byteArray() }),
  fc.record({ op: fc.constant("RELOCATE_SUCCESS" as const), reconnectKey: byteArray() }),
  fc.record({ op: fc.constant("RELOCATE_FAILURE" as const), reason: text }),
  fc.record({ op: fc.constant("RECONNECT_SUCCESS" as const), reconnectKey: byteArray() }),
  fc.record({ op: fc.constant("RECONNECT_FAILURE" as const), reason: text }),
  fc.record({ op: fc.constant("SESSION_MESSAGE" as const), message: byteArray(300) }),
  fc.constant({ op: "LOGOUT_SUCCESS" as const }),
  fc.record({ op: fc.constant("CHANNEL_JOIN" as const), channelName: text, channelId }),
  fc.record({ op: fc.constant("CHANNEL_LEAVE" as const), channelId }),
  fc.record({ op: fc.constant("CHANNEL_MESSAGE" as const), channelId, message: byteArray() }),
);

/** Decoded byte arrays are views: compare them as plain arrays. */
const normalize = (message: Message) =>
  Object.fromEntries(Object.entries(message).map(([key, value]) => [key, value instanceof Uint8Array ? [...value] : value]));

describe("protocol: properties", () => {
  it("round-trips every client message", () => {
    fc.assert(fc.property(clientMessage, (message) => assert.deepEqual(normalize(decodeClientMessage(encodeMessage(message))), normalize(message))), { numRuns: 2000 });
  });

  it("round-trips every server message", () => {
    fc.assert(fc.property(serverMessage, (message) => assert.deepEqual(normalize(decodeServerMessage(encodeMessage(message))), normalize(message))), { numRuns: 2000 });
  });

  it("decodes any bytes into a message or a ProtocolError, nothing else", () => {
    const anyPayload = fc.oneof(
      fc.uint8Array({ maxLength: 80 }),
      // Mutations of valid payloads reach deeper into the decoders than random bytes do.
      fc.tuple(clientMessage, fc.nat(), fc.integer({ min: 0, max: 255 })).map(([message, position, value]) => {
        const payload = encodeMessage(message).slice();
        if (payload.length > 0) payload[position % payload.length] = value;
        return payload.subarray(0, Math.max(0, payload.length - (value % 4)));
      }),
    );
    fc.assert(
      fc.property(anyPayload, (payload) => {
        for (const decode of [decodeClientMessage, decodeServerMessage]) {
          try {
            decode(payload);
          } catch (error) {
            if (!(error instanceof ProtocolError)) throw error;
          }
        }
      }),
      { numRuns: 20_000 },
    );
  });

  it("cuts a stream into the same frames however it is chunked", () => {
    fc.assert(
      fc.property(fc.array(clientMessage, { maxLength: 20 }), fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1 }), (messages, cuts) => {
        const payloads = messages.map(encodeMessage);
        const stream = concatAll(payloads.map(encodeFrame));
        const reader = new FrameReader();
        const received: Uint8Array[] = [];
        for (let at = 0, i = 0; at < stream.length; i++) {
          const size = cuts[i % cuts.length]!;
          received.push(...reader.push(stream.subarray(at, at + size)).map((payload) => payload.slice()));
          at += size;
        }
        assert.deepEqual(received.map((payload) => [...payload]), payloads.map((payload) => [...payload]));
        assert.equal(reader.bufferedBytes, 0);
      }),
      { numRuns: 500 },
    );
  });

  it("bounds a frame reader's memory, whatever arrives", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 4096 }), { maxLength: 30 }), (chunks) => {
        const reader = new FrameReader(1024);
        for (const chunk of chunks) {
          try {
            reader.push(chunk);
          } catch (error) {
            if (!(error instanceof ProtocolError)) throw error;
            assert.ok(["frame-too-large", "empty-frame"].includes(error.reason));
            return;
          }
          assert.ok(reader.bufferedBytes < 1024 + 2, `buffered ${reader.bufferedBytes}`);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe("protocol: frames", () => {
  it("refuses oversized and empty frames before their bytes arrive, and stays failed", () => {
    const reader = new FrameReader(100);
    assert.throws(() => reader.push(bytes("00 65")), (error: unknown) => error instanceof ProtocolError && error.reason === "frame-too-large");
    assert.throws(() => reader.push(bytes("00 01 40")), ProtocolError);
    assert.throws(() => new FrameReader().push(bytes("00 00")), (error: unknown) => error instanceof ProtocolError && error.reason === "empty-frame");
  });

  it("refuses to build frames the length prefix cannot describe", () => {
    assert.throws(() => encodeFrame(new Uint8Array(0)), RangeError);
    assert.throws(() => encodeFrame(new Uint8Array(MAX_PAYLOAD_BYTES + 1)), RangeError);
    assert.equal(encodeFrame(new Uint8Array(MAX_PAYLOAD_BYTES)).length, MAX_PAYLOAD_BYTES + 2);
    assert.throws(() => encodeMessage({ op: "SESSION_MESSAGE", message: new Uint8Array(MAX_PAYLOAD_BYTES) }), RangeError);
  });
});

function concatAll(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
