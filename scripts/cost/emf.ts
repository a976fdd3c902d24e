/**
 * The custom metrics in CloudWatch embedded metric format lines (what Powertools Metrics prints): one key
 * per metric name and dimension values, as CloudWatch bills them.
 */
export function emfMetrics(output: string, into: Set<string>): void {
  for (const line of output.split('\n')) {
    if (!line.includes('"_aws"')) continue;
    let doc: Record<string, unknown>;
    try {
      doc = JSON.parse(line);
    } catch {
      continue;
    }
    const aws = doc._aws as {
      CloudWatchMetrics?: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[];
    };
    for (const d of aws?.CloudWatchMetrics ?? [])
      for (const dims of d.Dimensions.length ? d.Dimensions : [[]])
        for (const m of d.Metrics)
          into.add(`${d.Namespace}/${m.Name}{${dims.map((k) => `${k}=${String(doc[k])}`).join(',')}}`);
  }
}
