import { managed } from "../api/managed.js";
import type { Ref } from "../api/ref.js";
import type { DataManager } from "../api/types.js";
import { hashKey, type ScalableKey } from "./keys.js";
import type { CollectionPart } from "./reaper.js";

/** Hash bits consumed per level of the trie: each internal node has 2^4 = 16 children. */
export const FANOUT_BITS = 4;
/** Children of an internal node. */
export const FANOUT = 1 << FANOUT_BITS;
/** Deepest level: a leaf there covers a single 32-bit hash value, so it cannot split further. */
export const MAX_DEPTH = 32 / FANOUT_BITS;
/** Largest hash value; the last leaf's range ends here. */
export const MAX_HASH = 0xffffffff;

/**
 * One node of the hash trie behind `ScalableMap` and `ScalableSet`, a managed object of
 * its own. A leaf holds the entries whose hashes share its prefix; an internal node holds Refs to
 * its 16 children. A node changes kind in place (a leaf splits into an internal node, an internal
 * node merges back into a leaf), so its parent is never rewritten by a split or a merge.
 */
@managed("shardless.ScalableMap.Node")
export class MapNode implements CollectionPart {
  constructor(
    /** Level in the trie: the node covers hashes sharing their top `FANOUT_BITS × depth` bits. */
    public depth: number,
    /** The entries of a leaf; null in an internal node. */
    public entries: Map<ScalableKey, unknown> | null,
    /** The children of an internal node, in hash order; null in a leaf. */
    public children: Ref<MapNode>[] | null,
  ) {}

  ownedParts(): readonly Ref[] {
    return this.children ?? [];
  }
}

/** The bounds a trie keeps, fixed when its collection is created. */
export interface TrieBounds {
  /** A leaf with more entries than this splits (unless at {@link MAX_DEPTH}). */
  readonly maxLeafEntries: number;
  /** Levels above this depth are always internal: the trie is pre-split to 16^minDepth leaves. */
  readonly minDepth: number;
}

/**
 * Sixteen sibling leaves merge back into their parent when they hold this many entries in all:
 * a quarter of a full leaf, so that a merged leaf must grow fourfold before it splits again
 * (hysteresis: a map hovering around one size does not split and merge on every write).
 */
function mergeTotal(bounds: TrieBounds): number {
  return Math.floor(bounds.maxLeafEntries / 4);
}

/**
 * A leaf this small after a removal looks at its siblings for a merge. Checking only small leaves
 * keeps most removals from reading 16 siblings (and so from conflicting with their writers).
 */
function mergeTrigger(bounds: TrieBounds): number {
  return Math.max(1, Math.floor(mergeTotal(bounds) / FANOUT));
}

/** The child slot of `hash` in an internal node at `depth`. */
export function childIndex(hash: number, depth: number): number {
  return (hash >>> (32 - FANOUT_BITS * (depth + 1))) & (FANOUT - 1);
}

/** Where a hash lives: its leaf, the leaf's ancestors (root first) and the hash range it covers. */
export interface Located {
  readonly leaf: MapNode;
  readonly path: readonly MapNode[];
  /** First hash the leaf covers. */
  readonly start: number;
  /** Last hash the leaf covers (inclusive). */
  readonly end: number;
}

/** Finds the leaf covering `hash`. Reads (never writes) every node on the way. */
export function locate(root: Ref<MapNode>, hash: number): Located {
  const path: MapNode[] = [];
  let node = root.get();
  while (node.children !== null) {
    path.push(node);
    node = node.children[childIndex(hash, node.depth)]!.get();
  }
  // Exact in doubles: 2^32 / span is an integer power of two.
  const span = 2 ** (32 - FANOUT_BITS * node.depth);
  const start = Math.floor(hash / span) * span;
  return { leaf: node, path, start, end: start + span - 1 };
}

/** A new trie, pre-split to `bounds.minDepth` levels; returns its root node (not yet stored). */
export function newTrieRoot(data: DataManager, bounds: TrieBounds): MapNode {
  const root = new MapNode(0, new Map(), null);
  presplit(data, root, bounds.minDepth);
  return root;
}

/** Turns the empty leaf `node` into a full subtree whose leaves are at depth `minDepth`. */
function presplit(data: DataManager, node: MapNode, minDepth: number): void {
  if (node.depth >= minDepth) return;
  const children: Ref<MapNode>[] = [];
  for (let i = 0; i < FANOUT; i++) {
    const child = new MapNode(node.depth + 1, new Map(), null);
    presplit(data, child, minDepth);
    children.push(data.createReference(child));
  }
  node.entries = null;
  node.children = children;
}

/** The value of `key` and whether it is present. */
export function trieGet(root: Ref<MapNode>, key: ScalableKey): { found: boolean; value: unknown } {
  const entries = locate(root, hashKey(key)).leaf.entries!;
  return { found: entries.has(key), value: entries.get(key) };
}

/**
 * Sets `key` to `value`; returns true when the key is new. Writes the key's leaf only, unless the
 * leaf outgrows its bound: then it splits in place into 16 new leaves.
 */
export function trieSet(data: DataManager, root: Ref<MapNode>, bounds: TrieBounds, key: ScalableKey, value: unknown): boolean {
  const { leaf } = locate(root, hashKey(key));
  const entries = leaf.entries!;
  const added = !entries.has(key);
  entries.set(key, value);
  if (added && entries.size > bounds.maxLeafEntries) split(data, leaf, bounds);
  return added;
}

function split(data: DataManager, leaf: MapNode, bounds: TrieBounds): void {
  if (leaf.depth >= MAX_DEPTH) return; // every key here has the same 32-bit hash: nothing to split on
  const children = Array.from({ length: FANOUT }, () => new MapNode(leaf.depth + 1, new Map(), null));
  for (const [key, value] of leaf.entries!) children[childIndex(hashKey(key), leaf.depth)]!.entries!.set(key, value);
  leaf.entries = null;
  leaf.children = children.map((child) => data.createReference(child));
  // All keys may share the next 4 bits too; a child still over the bound splits again.
  for (const child of children) if (child.entries!.size > bounds.maxLeafEntries) split(data, child, bounds);
}

/**
 * Removes `key`; returns true when it was present. Writes the key's leaf only, unless the leaf has
 * become small: then its siblings are read, and if all 16 are leaves holding few entries in all they
 * merge into their parent (which is written, and the siblings removed), and so on upwards.
 */
export function trieDelete(data: DataManager, root: Ref<MapNode>, bounds: TrieBounds, key: ScalableKey): boolean {
  const { leaf, path } = locate(root, hashKey(key));
  if (!leaf.entries!.delete(key)) return false;
  let size = leaf.entries!.size;
  for (let level = path.length - 1; level >= 0 && size <= mergeTrigger(bounds); level--) {
    const parent = path[level]!;
    if (parent.depth < bounds.minDepth || !tryMerge(data, parent, bounds)) break;
    size = parent.entries!.size;
  }
  return true;
}

function tryMerge(data: DataManager, parent: MapNode, bounds: TrieBounds): boolean {
  const children = parent.children!.map((ref) => ref.get());
  let total = 0;
  for (const child of children) {
    if (child.entries === null) return false;
    total += child.entries.size;
  }
  if (total > mergeTotal(bounds)) return false;
  const merged = new Map<ScalableKey, unknown>();
  for (const child of children) for (const [key, value] of child.entries!) merged.set(key, value);
  parent.children = null;
  parent.entries = merged;
  for (const child of children) data.removeObject(child);
  return true;
}

/** Number of entries: reads every node of the trie. */
export function trieSize(root: Ref<MapNode>): number {
  const node = root.get();
  if (node.entries !== null) return node.entries.size;
  let size = 0;
  for (const child of node.children!) size += trieSize(child);
  return size;
}

/** True when the trie has no entry; reads leaves only until it finds one that is not empty. */
export function trieIsEmpty(root: Ref<MapNode>): boolean {
  const node = root.get();
  if (node.entries !== null) return node.entries.size === 0;
  return node.children!.every(trieIsEmpty);
}

/**
 * Empties the trie: the root (kept, so Refs to it and cursors stay valid) becomes a fresh trie, and
 * the old children are returned for removal.
 */
export function trieClear(data: DataManager, root: Ref<MapNode>, bounds: TrieBounds): Ref[] {
  const node = root.getForUpdate();
  const detached = node.children ?? [];
  node.children = null;
  node.entries = new Map();
  presplit(data, node, bounds.minDepth);
  return detached;
}
