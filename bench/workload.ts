// The transfer workload: requests, replies and the account picker, shared by every system and the
// load generator.

/** A transfer request on the wire: [requestId u32][from u32][to u32][amount u32]. */
export const REQUEST_BYTES = 16;
/** A reply: [requestId u32][ok u8]. */
export const REPLY_BYTES = 5;
/** Every account starts with this balance; the total must never change. */
export const INITIAL_BALANCE = 1000;

export function encodeRequest(requestId: number, from: number, to: number, amount: number): Uint8Array {
  const bytes = new Uint8Array(REQUEST_BYTES);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, requestId);
  view.setUint32(4, from);
  view.setUint32(8, to);
  view.setUint32(12, amount);
  return bytes;
}

export function decodeRequest(bytes: Uint8Array): { requestId: number; from: number; to: number; amount: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { requestId: view.getUint32(0), from: view.getUint32(4), to: view.getUint32(8), amount: view.getUint32(12) };
}

export function encodeReply(requestId: number, ok: boolean): Uint8Array {
  const bytes = new Uint8Array(REPLY_BYTES);
  new DataView(bytes.buffer).setUint32(0, requestId);
  bytes[4] = ok ? 1 : 0;
  return bytes;
}

/** Bytes of an echo request: its id, then padding (a small game message). */
export const ECHO_BYTES = 32;

/** An echo request: [requestId u32] then zeros; the server sends it back unchanged. */
export function encodeEcho(requestId: number): Uint8Array {
  const bytes = new Uint8Array(ECHO_BYTES);
  new DataView(bytes.buffer).setUint32(0, requestId);
  return bytes;
}

/** The request id at the start of a reply (transfer replies and echoes both start with it). */
export function replyId(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);
}

/**
 * Picks account indices in [0, n): uniformly when `alpha` is 0, else with a Zipf distribution of
 * exponent `alpha` (α = 1.5 puts most of the traffic on a few accounts: heavy contention).
 */
export function accountPicker(n: number, alpha: number, random: () => number = Math.random): () => number {
  if (alpha === 0) return () => Math.floor(random() * n);
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let k = 0; k < n; k++) {
    sum += 1 / Math.pow(k + 1, alpha);
    cdf[k] = sum;
  }
  for (let k = 0; k < n; k++) cdf[k]! /= sum;
  return () => {
    const u = random();
    let low = 0;
    let high = n - 1;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (cdf[middle]! < u) low = middle + 1;
      else high = middle;
    }
    return low;
  };
}

/** Two distinct accounts. */
export function pickPair(pick: () => number): [number, number] {
  const from = pick();
  let to = pick();
  while (to === from) to = pick();
  return [from, to];
}
