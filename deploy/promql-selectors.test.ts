import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exposition, references } from './promql-selectors.js';

test('references: selectors with their matcher labels, grouping labels, and no functions or keywords', () => {
  const r = references('histogram_quantile(0.99, sum by (route, le) (rate(sluice_request_duration_seconds_bucket{instance=~"$instance", route!="x"}[$__rate_interval])))'
    + ' / on (route) group_left () max without (plan) (sluice_requests_total) > bool 0 and sum(up offset 5m)');
  assert.deepEqual(r.selectors, [
    { metric: 'sluice_request_duration_seconds_bucket', labels: ['instance', 'route'] },
    { metric: 'sluice_requests_total', labels: [] },
    { metric: 'up', labels: [] },
  ]);
  assert.deepEqual(r.groupingLabels, ['route', 'le', 'route', 'plan']);
});

test('references: a label value that looks like a metric name is not a selector', () => {
  assert.deepEqual(references('sluice_limit_decisions_total{result="sluice_fake_total"}').selectors, [{ metric: 'sluice_limit_decisions_total', labels: ['result'] }]);
});

test('exposition: sample names (histogram suffixes included) and their label names', () => {
  const m = exposition('# HELP h x\n# TYPE h histogram\nh_bucket{le="1",route="a"} 1\nh_sum{route="a"} 2\nh_count{route="a"} 1\ng 3\n');
  assert.deepEqual([...m.keys()], ['h_bucket', 'h_sum', 'h_count', 'g']);
  assert.deepEqual([...m.get('h_bucket')!], ['le', 'route']);
  assert.deepEqual([...m.get('g')!], []);
});
