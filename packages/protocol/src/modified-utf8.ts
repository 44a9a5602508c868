import { ProtocolError } from "./protocol-error.js";

/** Longest encoded string a `String` field can carry (its length prefix is an unsigned short). */
export const MAX_STRING_BYTES = 0xffff;

/** Number of bytes `text` takes in Java's modified UTF-8. */
export function modifiedUtf8Length(text: string): number {
  let length = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    length += unit >= 0x0001 && unit <= 0x007f ? 1 : unit <= 0x07ff ? 2 : 3;
  }
  return length;
}

/**
 * Writes `text` as Java's `DataOutput.writeUTF` encodes characters: each UTF-16 code unit on its
 * own (so a character above U+FFFF becomes two 3-byte surrogates), and U+0000 as `C0 80`.
 * @returns the offset after the last byte written.
 */
export function writeModifiedUtf8(text: string, target: Uint8Array, offset: number): number {
  let at = offset;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0x0001 && unit <= 0x007f) {
      target[at++] = unit;
    } else if (unit <= 0x07ff) {
      target[at++] = 0xc0 | (unit >> 6);
      target[at++] = 0x80 | (unit & 0x3f);
    } else {
      target[at++] = 0xe0 | (unit >> 12);
      target[at++] = 0x80 | ((unit >> 6) & 0x3f);
      target[at++] = 0x80 | (unit & 0x3f);
    }
  }
  return at;
}

/**
 * Decodes `length` bytes of modified UTF-8 from `source` at `offset`, as Java's `readUTF` does
 * (surrogates come back as the code units they encode).
 * @throws {ProtocolError} `malformed-string` for a byte that cannot start or continue a character.
 */
export function readModifiedUtf8(source: Uint8Array, offset: number, length: number): string {
  const end = offset + length;
  const units: number[] = [];
  let at = offset;
  while (at < end) {
    const first = source[at]!;
    if (first < 0x80) {
      units.push(first);
      at += 1;
    } else if ((first & 0xe0) === 0xc0) {
      if (at + 2 > end) throw malformed(at);
      const second = continuation(source, at + 1);
      units.push(((first & 0x1f) << 6) | second);
      at += 2;
    } else if ((first & 0xf0) === 0xe0) {
      if (at + 3 > end) throw malformed(at);
      const second = continuation(source, at + 1);
      const third = continuation(source, at + 2);
      units.push(((first & 0x0f) << 12) | (second << 6) | third);
      at += 3;
    } else {
      throw malformed(at);
    }
  }
  // String.fromCharCode with many arguments can exceed the engine's argument limit: chunk it.
  let text = "";
  for (let i = 0; i < units.length; i += 4096) text += String.fromCharCode(...units.slice(i, i + 4096));
  return text;
}

function continuation(source: Uint8Array, at: number): number {
  const byte = source[at]!;
  if ((byte & 0xc0) !== 0x80) throw malformed(at);
  return byte & 0x3f;
}

function malformed(at: number): ProtocolError {
  return new ProtocolError("malformed-string", `malformed modified UTF-8 at byte ${at}`);
}
