/** Entry point: the scheduler role alone (distributed mode). */
import { loadConfig } from '../src/config.js';
import { runMain } from '../src/boot.js';

await runMain(loadConfig(), ['scheduler']);
