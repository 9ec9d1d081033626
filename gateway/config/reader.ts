// A tiny schema reader: every accessor takes a path, returns a typed value or a
// default, and records an error naming the path instead of throwing, so `--check`
// can print every mistake in one go.

export type Obj = Record<string, unknown>;

export class ConfigReader {
  readonly errors: string[] = [];

  fail(path: string, message: string): void {
    this.errors.push(`${path}: ${message}`);
  }

  isObject(v: unknown): v is Obj {
    return typeof v === 'object' && v !== null && !Array.isArray(v);
  }

  object(parent: Obj, key: string, path: string): Obj {
    const v = parent[key];
    if (v === undefined || v === null) return {};
    if (!this.isObject(v)) {
      this.fail(join(path, key), 'must be a mapping');
      return {};
    }
    return v;
  }

  /** Reject keys the schema does not know: a typo must not silently keep a default. */
  known(o: Obj, path: string, keys: readonly string[]): void {
    for (const k of Object.keys(o)) {
      if (!keys.includes(k)) this.fail(join(path, k), `unknown field (expected one of: ${keys.join(', ')})`);
    }
  }

  number(o: Obj, key: string, path: string, def: number, opts: { min?: number; max?: number; integer?: boolean } = {}): number {
    const v = o[key];
    if (v === undefined || v === null) return def;
    const p = join(path, key);
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      this.fail(p, `must be a number, got ${JSON.stringify(v)}`);
      return def;
    }
    if (opts.integer && !Number.isInteger(v)) this.fail(p, `must be a whole number, got ${v}`);
    if (opts.min !== undefined && v < opts.min) this.fail(p, `must be >= ${opts.min}, got ${v}`);
    if (opts.max !== undefined && v > opts.max) this.fail(p, `must be <= ${opts.max}, got ${v}`);
    return v;
  }

  optionalNumber(o: Obj, key: string, path: string, opts: { min?: number; integer?: boolean } = {}): number | undefined {
    if (o[key] === undefined || o[key] === null) return undefined;
    return this.number(o, key, path, 0, opts);
  }

  string(o: Obj, key: string, path: string, def: string): string {
    return this.optionalString(o, key, path) ?? def;
  }

  optionalString(o: Obj, key: string, path: string): string | undefined {
    const v = o[key];
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') {
      this.fail(join(path, key), `must be a string, got ${JSON.stringify(v)}`);
      return undefined;
    }
    return v;
  }

  requiredString(o: Obj, key: string, path: string): string {
    const v = this.optionalString(o, key, path);
    if (v === undefined && (o[key] === undefined || o[key] === null || o[key] === '')) {
      this.fail(join(path, key), 'is required');
    }
    return v ?? '';
  }

  boolean(o: Obj, key: string, path: string, def: boolean): boolean {
    const v = o[key];
    if (v === undefined || v === null) return def;
    if (typeof v !== 'boolean') {
      this.fail(join(path, key), `must be true or false, got ${JSON.stringify(v)}`);
      return def;
    }
    return v;
  }

  oneOf<T extends string>(o: Obj, key: string, path: string, allowed: readonly T[], def: T): T {
    const v = o[key];
    if (v === undefined || v === null) return def;
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
      this.fail(join(path, key), `must be one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
      return def;
    }
    return v as T;
  }

  array(o: Obj, key: string, path: string): unknown[] {
    const v = o[key];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) {
      this.fail(join(path, key), 'must be a list');
      return [];
    }
    return v;
  }

  stringArray(o: Obj, key: string, path: string): string[] {
    return this.array(o, key, path).filter((item, i) => {
      if (typeof item === 'string' && item !== '') return true;
      this.fail(`${join(path, key)}[${i}]`, 'must be a non-empty string');
      return false;
    }) as string[];
  }
}

export function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}
