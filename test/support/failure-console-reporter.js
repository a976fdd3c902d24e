/**
 * A Jest reporter beside the summary reporter (jest.config.js): prints what a failing test file wrote to
 * the console, with where it was written, because beside a failure it is a clue; a passing file's console
 * output is noise and is dropped. Plain CommonJS: Jest loads reporters without transforming them.
 */
const path = require('node:path');
const { getConsoleOutput } = require('@jest/console');

class FailureConsoleReporter {
  constructor(globalConfig) {
    this.globalConfig = globalConfig;
  }

  onTestResult(test, result) {
    const failed = result.numFailingTests > 0 || result.testExecError !== undefined;
    if (!failed || !result.console || result.console.length === 0) return;
    const file = path.relative(this.globalConfig.rootDir, result.testFilePath);
    process.stderr.write(
      `\nconsole output of ${file} (it failed):\n${getConsoleOutput(result.console, test.context.config, this.globalConfig)}\n`,
    );
  }

  getLastError() {
    return undefined;
  }
}

module.exports = FailureConsoleReporter;
