import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bindingProblems } from './listener-config.js';

// Virtual hosts bind to listeners by name (nginx: a server block's `listen`, and
// `default_server` on at most one per address). The names are checked against the
// listeners the config has, "default" when it has no listeners section.

describe('listeners: virtual host binding', () => {
  const listeners = new Set(['http', 'https']);

  it('accepts known listeners and one default per listener', () => {
    assert.deepEqual(bindingProblems({
      virtual_hosts: [
        { name: 'api', listeners: ['http', 'https'], default_for: ['https'] },
        { name: 'www', default_for: ['http'] },
        { name: 'any' },
      ],
    }, listeners), []);
    assert.deepEqual(bindingProblems({}, listeners), []);
  });

  it('names every unknown listener, a second default, and a default on a listener the host is not on', () => {
    assert.deepEqual(bindingProblems({
      virtual_hosts: [
        { name: 'a', listeners: ['http', 'htps'], default_for: ['http'] },
        { name: 'b', default_for: ['http', 'nope'] },
        { name: 'c', listeners: ['http'], default_for: ['https'] },
      ],
    }, listeners), [
      'virtual_hosts[0].listeners[1]: unknown listener "htps" (listeners: http, https)',
      'virtual_hosts[1].default_for[0]: listener "http" already has its default virtual host, virtual_hosts[0]',
      'virtual_hosts[1].default_for[1]: unknown listener "nope" (listeners: http, https)',
      'virtual_hosts[2].default_for[0]: the virtual host is not on listener "https" (its listeners)',
    ]);
  });

  it('without a listeners section the one listener is "default"', () => {
    assert.deepEqual(bindingProblems({ virtual_hosts: [{ listeners: ['default'] }, { listeners: ['http'] }] }, new Set(['default'])),
      ['virtual_hosts[1].listeners[0]: unknown listener "http" (listeners: default)']);
  });
});
