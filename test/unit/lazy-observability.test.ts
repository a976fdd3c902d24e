/**
 * The verification function's logger and metrics load on first use: a genuine delivery (no warning, no
 * metric, DEBUG off) never loads Powertools, so its cold start does not pay for it.
 */
import type { Context } from 'aws-lambda';
import { lazyLogger, lazyMetrics } from '../../lambda/adapters/lazy-observability';

const context = { awsRequestId: 'req-lazy-1', functionName: 'verify' } as unknown as Context;

it('a logger at INFO stays unloaded through debug records, and loads, with the context, on the first warning', () => {
  const level = process.env.POWERTOOLS_LOG_LEVEL;
  process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
  process.env.POWERTOOLS_DEV = 'false';
  const lines: string[] = [];
  const capture = (chunk: unknown) => {
    lines.push(String(chunk));
    return true;
  };
  const write = jest.spyOn(process.stdout, 'write').mockImplementation(capture);
  const writeErr = jest.spyOn(process.stderr, 'write').mockImplementation(capture);
  try {
    const logger = lazyLogger();
    logger.addContext(context);
    logger.debug?.('accepted delivery', { eventId: 'e1' });
    expect(logger.loaded).toBe(false);
    logger.warn('rejected: SC-Signature does not match', { eventId: 'e2' });
    expect(logger.loaded).toBe(true);
    const record = JSON.parse(lines.join('').trim().split('\n').pop() as string);
    expect(record).toMatchObject({ level: 'WARN', message: 'rejected: SC-Signature does not match', eventId: 'e2' });
    expect(JSON.stringify(record)).toContain('req-lazy-1');
  } finally {
    write.mockRestore();
    writeErr.mockRestore();
    process.env.POWERTOOLS_LOG_LEVEL = level;
  }
});

it('with DEBUG on, debug records load it and are written', () => {
  const level = process.env.POWERTOOLS_LOG_LEVEL;
  process.env.POWERTOOLS_LOG_LEVEL = 'DEBUG';
  const write = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
  try {
    const logger = lazyLogger();
    logger.debug?.('accepted delivery');
    expect(logger.loaded).toBe(true);
  } finally {
    write.mockRestore();
    process.env.POWERTOOLS_LOG_LEVEL = level;
  }
});

it('metrics stay unloaded until something is counted, and publishing nothing writes nothing', () => {
  const lines: string[] = [];
  const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    lines.push(String(chunk));
    return true;
  });
  try {
    const metrics = lazyMetrics();
    metrics.publish();
    expect(metrics.loaded).toBe(false);
    expect(lines).toEqual([]);
    metrics.count('SignatureFailures');
    metrics.publish();
    expect(metrics.loaded).toBe(true);
    expect(lines.join('')).toContain('"SignatureFailures"');
  } finally {
    write.mockRestore();
  }
});
