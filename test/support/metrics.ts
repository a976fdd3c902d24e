/** CoreMetrics that records what was emitted, for assertions. */
import type { MetricName } from '../../lambda/contract';
import type { CoreMetrics } from '../../lambda/core/metrics';

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
