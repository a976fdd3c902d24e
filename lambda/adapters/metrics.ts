/** CoreMetrics on Powertools Metrics: CloudWatch embedded metric format, no API calls. */
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { METRICS_NAMESPACE } from '../contract';
import type { CoreMetrics } from '../core/metrics';

/** Namespace from POWERTOOLS_METRICS_NAMESPACE (the stack sets it), service dimension from POWERTOOLS_SERVICE_NAME. */
export const metrics = new Metrics({ namespace: process.env.POWERTOOLS_METRICS_NAMESPACE || METRICS_NAMESPACE });

export const coreMetrics: CoreMetrics = {
  count(name, value = 1, dimensions) {
    if (dimensions) {
      // A metric with its own dimensions is published on its own line, right away.
      metrics.singleMetric().addDimensions(dimensions).addMetric(name, MetricUnit.Count, value);
    } else {
      metrics.addMetric(name, MetricUnit.Count, value);
    }
  },
  milliseconds(name, value) {
    metrics.addMetric(name, MetricUnit.Milliseconds, value);
  },
};
