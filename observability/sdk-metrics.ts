/**
 * The worker's MetricsRegistry (observability/metrics.ts): the same declarations handed to the
 * Temporal SDK's meter, so K2's metrics appear on the worker's one /metrics (K2_WORKER_METRICS)
 * beside the SDK's own. The SDK's Prometheus exporter keeps names as given (no prefix, no unit or
 * _total suffix by default). Histogram buckets are fixed when the Runtime is installed
 * (histogramBucketOverrides), so a histogram is accepted only with the buckets given there.
 */
import type { MetricMeter, MetricTags } from '@temporalio/common';
import type { Labels, MetricsRegistry } from './metrics';

const tags = (labels?: Labels): MetricTags | undefined => labels;

export function sdkMetricsRegistry(meter: MetricMeter, installedBuckets: Readonly<Record<string, readonly number[]>>): MetricsRegistry {
  return {
    counter(name, help) {
      const counter = meter.createCounter(name, '', help);
      return { inc: (labels, by = 1) => counter.add(by, tags(labels)) };
    },
    gauge(name, help) {
      const gauge = meter.createGauge(name, 'float', '', help);
      return { set: (value, labels) => gauge.set(value, tags(labels)) };
    },
    histogram(name, help, buckets) {
      const installed = installedBuckets[name];
      if (!installed || installed.join() !== buckets.join())
        throw new Error(`histogram ${name}: its buckets must be given to Runtime.install (histogramBucketOverrides) before it is created`);
      const histogram = meter.createHistogram(name, 'float', '', help);
      return { observe: (value, labels) => histogram.record(value, tags(labels)) };
    },
  };
}
