/** The metrics surface the cores need; Powertools Metrics (EMF) in Lambda, nothing locally. */
import type { MetricName } from '../contract';

export interface CoreMetrics {
  count(name: MetricName, value?: number, dimensions?: Record<string, string>): void;
  milliseconds(name: MetricName, value: number): void;
}

export const noMetrics: CoreMetrics = {
  count() {},
  milliseconds() {},
};
