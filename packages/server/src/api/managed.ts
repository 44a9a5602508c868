import { ManagedObjectError } from "./errors.js";

/** Any class whose instances can be managed objects. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ManagedClass = abstract new (...args: any[]) => object;

const TAG = Symbol("shardless.managedTag");

/**
 * The tags of managed classes, known to the whole process.
 *
 * Class definitions are code, not server state: a tag names the same class in every server of the
 * process, the way a class name does. Registering a different class under a tag already taken is
 * an error, because stored data would then decode into the wrong class.
 */
const classesByTag = new Map<string, ManagedClass>();

/**
 * Class decorator marking instances of the class as managed objects, stored under `tag`.
 *
 * The tag is written with every stored instance and chooses the class when it is read back, so it
 * must stay the same for the life of the data and never be reused for another class. Tags are
 * non-empty strings; a dotted `game.Class` form is conventional. Tags starting `shardless.` are
 * reserved.
 *
 * @throws {ManagedObjectError} if the tag is empty or already names another class.
 */
export function managed(tag: string) {
  return function <C extends ManagedClass>(cls: C, context: ClassDecoratorContext<C>): void {
    if (context.kind !== "class") throw new ManagedObjectError("@managed decorates classes only");
    registerManagedClass(tag, cls);
  };
}

/**
 * Registers `cls` under `tag` without a decorator (for JavaScript without decorator support).
 * @throws {ManagedObjectError} as {@link managed}.
 */
export function registerManagedClass(tag: string, cls: ManagedClass): void {
  if (typeof tag !== "string" || tag.length === 0) {
    throw new ManagedObjectError(`@managed needs a non-empty tag (class ${cls.name})`);
  }
  const existing = classesByTag.get(tag);
  if (existing !== undefined && existing !== cls) {
    // A module evaluated twice (e.g. two copies of a package) defines an equal class anew; tell the
    // user which two classes collide rather than silently decoding into the wrong one.
    throw new ManagedObjectError(
      `managed tag ${JSON.stringify(tag)} is already used by class ${existing.name}; cannot register ${cls.name}`,
    );
  }
  classesByTag.set(tag, cls);
  Object.defineProperty(cls, TAG, { value: tag, enumerable: false, writable: false, configurable: false });
}

/** The tag of `value`'s class, or undefined if `value` is not a managed object. */
export function managedTagOf(value: object): string | undefined {
  const ctor = (value as { constructor?: unknown }).constructor;
  if (typeof ctor !== "function") return undefined;
  // Read the class's own tag: a subclass of a managed class that is not itself decorated must not
  // be stored under its parent's tag, or it would come back as the parent.
  return Object.prototype.hasOwnProperty.call(ctor, TAG) ? (ctor as unknown as Record<symbol, string>)[TAG] : undefined;
}

/** True when `value` is an instance of a class registered with {@link managed}. */
export function isManagedObject(value: unknown): value is object {
  return typeof value === "object" && value !== null && managedTagOf(value) !== undefined;
}

/** True when `value` is an instance of a subclass of a managed class that lacks its own tag. */
export function isUntaggedManagedSubclass(value: object): boolean {
  return managedTagOf(value) === undefined && TAG in (value.constructor ?? {});
}

/** The class registered under `tag`, or undefined. */
export function managedClassForTag(tag: string): ManagedClass | undefined {
  return classesByTag.get(tag);
}
