import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { makeChain } from './chain.js';
import { RequestContext, type Stage } from './context.js';

// The chain runner's rules, in process: stages in order, each continuing or answering,
// synchronous ones without a promise, and every failure to the one error handler.

const ctx = (): RequestContext => new RequestContext({} as IncomingMessage, {} as ServerResponse, 'r1', '/', 0);

/** A stage that records its name and answers `result` (a value, a promise of one, or a throw). */
function stage(log: string[], name: string, result: boolean | Promise<boolean> | Error = true): Stage {
  return () => {
    log.push(name);
    if (result instanceof Error) throw result;
    return result;
  };
}

describe('chain runner', () => {
  it('runs the stages in order while each continues; a stage answering the request ends it', () => {
    const log: string[] = [];
    makeChain([stage(log, 'auth'), stage(log, 'limits', false), stage(log, 'proxy')], () => log.push('error'))(ctx());
    assert.deepEqual(log, ['auth', 'limits']);
  });

  it('synchronous stages run in the call itself: nothing is left for a later tick', () => {
    const log: string[] = [];
    makeChain([stage(log, 'a'), stage(log, 'b'), stage(log, 'c')], () => log.push('error'))(ctx());
    assert.deepEqual(log, ['a', 'b', 'c']);
  });

  it('an asynchronous stage resumes the chain at the next stage once it settles true, and ends it on false', async () => {
    const log: string[] = [];
    let release!: (ok: boolean) => void;
    const run = makeChain([stage(log, 'a'), stage(log, 'wait', new Promise((r) => { release = r; })), stage(log, 'c')], () => log.push('error'));
    run(ctx());
    assert.deepEqual(log, ['a', 'wait'], 'the chain waits, and does not run what follows meanwhile');
    release(true);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(log, ['a', 'wait', 'c']);

    const stopped: string[] = [];
    makeChain([stage(stopped, 'wait', Promise.resolve(false)), stage(stopped, 'c')], () => stopped.push('error'))(ctx());
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(stopped, ['wait']);
  });

  it('a stage that throws, or whose promise rejects, goes to the error handler with its context, and nothing after it runs', async () => {
    const log: string[] = [];
    const errors: [RequestContext, unknown][] = [];
    const boom = new Error('boom');
    const c1 = ctx();
    makeChain([stage(log, 'a'), stage(log, 'throws', boom), stage(log, 'c')], (c, e) => errors.push([c, e]))(c1);
    const c2 = ctx();
    makeChain([stage(log, 'rejects', Promise.reject(boom)), stage(log, 'c')], (c, e) => errors.push([c, e]))(c2);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(log, ['a', 'throws', 'rejects']);
    assert.equal(errors.length, 2);
    assert.ok(errors[0]![0] === c1 && errors[0]![1] === boom);
    assert.ok(errors[1]![0] === c2 && errors[1]![1] === boom);
  });

  it('one chain serves many requests at once, each from its own place', async () => {
    const seen: string[] = [];
    const gates = new Map<string, (ok: boolean) => void>();
    const run = makeChain([
      (c) => new Promise<boolean>((r) => gates.set(c.requestId, r)),
      (c) => { seen.push(c.requestId); return true; },
    ], () => seen.push('error'));
    const a = new RequestContext({} as IncomingMessage, {} as ServerResponse, 'a', '/', 0);
    const b = new RequestContext({} as IncomingMessage, {} as ServerResponse, 'b', '/', 0);
    run(a); run(b);
    gates.get('b')!(true);
    await new Promise((r) => setImmediate(r));
    gates.get('a')!(true);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(seen, ['b', 'a']);
  });
});
