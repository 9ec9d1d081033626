import { Type, type ObjectOptions, type SchemaOptions, type Static, type TObject, type TProperties, type TSchema, type TUnsafe } from '@sinclair/typebox';

// Schema shapes TypeBox spells in a way that gives poor errors. `Type.Union` of literals
// or objects becomes `anyOf`, and ajv then reports every branch's failure ("must be equal
// to constant", "must be equal to poisson", ...). An `enum` gives one error that lists
// the choices, and a `oneOf` with ajv's `discriminator` checks only the branch its tag
// names, so the errors are the ones a person would write.

/** One of a few strings, as `enum` (one error naming every choice). */
export function StringEnum<const T extends readonly string[]>(values: T, options: SchemaOptions = {}): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ ...options, type: 'string', enum: [...values] });
}

/** Objects told apart by the string property `tag`; each member sets it with `Type.Literal`. */
export function TaggedUnion<T extends readonly TObject[]>(tag: string, members: T, options: SchemaOptions = {}): TUnsafe<Static<T[number]>> {
  return Type.Unsafe<Static<T[number]>>({
    ...options,
    type: 'object',
    required: [tag],
    discriminator: { propertyName: tag },
    oneOf: members as readonly TSchema[],
  });
}

/** A mapping that refuses unknown fields: a typo must not silently keep a default. */
export function Section<P extends TProperties>(properties: P, options: ObjectOptions = {}): TObject<P> {
  return Type.Object(properties, { additionalProperties: false, ...options });
}
