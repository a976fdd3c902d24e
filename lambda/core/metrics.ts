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

/** Records what was emitted, for tests and the load test's report. */
export class RecordingMetrics implements CoreMetrics {
  readonly emitted: {
    name: MetricName;
    value: number;
    unit: 'Count' | 'Milliseconds';
    dimensions?: Record<string, string>;
  }[] = [];
  count(name: MetricName, value = 1, dimensions?: Record<string, string>) {
    this.emitted.push({ name, value, unit: 'Count', dimensions });
  }
  milliseconds(name: MetricName, value: number) {
    this.emitted.push({ name, value, unit: 'Milliseconds' });
  }
  total(name: MetricName): number {
    return this.emitted.filter((m) => m.name === name).reduce((sum, m) => sum + m.value, 0);
  }
}
