/**
 * Corpus runner (issue 13, "Measure"): deploys every BPMN file of public
 * example corpora through the REST API, one file per deployment, starts every
 * process it deployed once, and reports what happened: accepted, rejected (by
 * cause), the outcome of each start, and anything that hung or crashed.
 *
 *   npm run corpus -- <dir> [<dir>...] [--match=<regex>] [--request-ms=10000] [--wait-ms=3000]
 *
 * Each <dir> is one corpus, searched recursively for *.bpmn and *.bpmn20.xml
 * (*.dmn files are only counted). Its origin (repository, commit, paths) is
 * read from <dir>/CORPUS.json (`{"repo","commit","paths"}`, written when the
 * corpus was fetched; see bench/README.md), or from git when <dir> is a
 * checkout. `--match` keeps only the files whose relative path matches.
 *
 * Baton runs as separate processes (bench/lib/cluster.ts: one API, one step
 * worker, one scheduler; no service worker, so no model makes HTTP calls from
 * here) against the real Postgres and Redis, in a fresh schema and queue
 * prefix per corpus. Not in this process, because a model that makes the
 * engine loop synchronously would block this process's timers too and the
 * run could not end by itself; across a process boundary every request has a
 * client-side deadline (AbortSignal.timeout), and a Baton that stopped
 * answering is killed and replaced (fresh schema) while the run goes on.
 *
 * Per file: POST /v1/deployments with that file alone (deadline
 * --request-ms); for each process deployed, POST /v1/process-instances
 * {processKey, version, variables: {}, waitMs} (same deadline); an instance
 * still alive afterwards is cancelled (so timers and loops of earlier files do
 * not load later ones); then GET /health of every Baton process (2 s). A
 * request without an answer by its deadline, a /health without an answer, or
 * a Baton process that exited is a hang or a crash: it is recorded with a
 * diagnosis (CPU of each process over a second, the instances of that
 * process key, the last log lines), the cluster is replaced, and the run goes
 * on with the next file.
 *
 * Prints a table per corpus plus the top rejection causes and incident
 * codes, and writes every per-file result to
 * bench/results/<timestamp>-corpus.json.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { cleanUpOnCrash, dropStale, isolate, startCluster, type Cluster, type Isolation, type Proc } from './lib/cluster.js';
import { cpuSnapshot } from './lib/cpu.js';
import { machineInfo } from './lib/reference.js';
import { sleep } from './lib/util.js';

// ---- arguments ------------------------------------------------------------------

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const REQUEST_MS = Number(flag('request-ms') ?? 10_000);
const WAIT_MS = Number(flag('wait-ms') ?? 3_000);
const HEALTH_MS = 2_000;
const CANCEL_WAIT_MS = 1_000;
const MATCH = flag('match') !== undefined ? new RegExp(flag('match')!) : null;
const dirs = args.filter((a) => !a.startsWith('--'));
if (dirs.length === 0 || !Number.isFinite(REQUEST_MS) || !Number.isFinite(WAIT_MS) || WAIT_MS >= REQUEST_MS) {
  console.error('usage: npm run corpus -- <dir> [<dir>...] [--match=<regex>] [--request-ms=10000] [--wait-ms=3000]  (wait-ms < request-ms)');
  process.exit(2);
}

// ---- results --------------------------------------------------------------------

/** a deploy problem (its `file` is the file itself, so it is not repeated) */
interface Problem {
  elementId: string | null;
  message: string;
}

type DeployOutcome = 'accepted' | 'rejected' | 'http_error' | 'hung' | 'failed';
type StartOutcome =
  | 'completed'
  | 'waiting'
  | 'error'
  | 'terminated'
  | 'running'
  | 'suspended'
  | 'not_startable'
  | 'http_error'
  | 'hung'
  | 'failed'
  | 'skipped';

interface StartResult {
  key: string;
  version: number;
  /** isExecutable of the <process> element in the file (null: not found or not set) */
  executable: boolean | null;
  outcome: StartOutcome;
  httpStatus?: number;
  ms?: number;
  code?: string;
  message?: string;
  instanceId?: string;
  incidents?: Array<{ code: string; elementId: string | null; message: string }>;
  activeElements?: string[];
  /** element types (tag names in the file) of activeElements */
  activeTypes?: string[];
  waits?: string[];
  /** only when the cancel afterwards did not answer 2xx */
  cancel?: { outcome: 'http_error' | 'hung' | 'failed'; httpStatus?: number; code?: string; message?: string };
}

interface Diagnosis {
  /** cores used by each Baton process (with its children) over one second after the hang */
  cores: Record<string, number>;
  /** which processes answered /health, and which exited (with code or signal) */
  health: Record<string, string>;
  /** GET /v1/process-instances?processKey=… when the API still answers */
  instances?: unknown;
  /** last log output of each process */
  logs: Record<string, string>;
}

interface Fault {
  kind: 'hang' | 'crash' | 'server_error';
  /** what did not answer: the deploy, a start, a cancel, /health */
  what: string;
  processKey?: string;
  detail?: string;
  diagnosis?: Diagnosis;
}

interface FileResult {
  file: string;
  bytes: number;
  deploy: {
    outcome: DeployOutcome;
    httpStatus?: number;
    ms: number;
    code?: string;
    message?: string;
    problems?: Problem[];
    /** normalised problem messages (the rejection causes), one entry per distinct cause */
    causes?: string[];
    processes?: Array<{ key: string; version: number }>;
  };
  starts: StartResult[];
  /** hangs, crashes and 5xx answers while this file ran; each hang or crash replaced the cluster */
  faults?: Fault[];
}

interface CorpusSource {
  repo: string | null;
  commit: string | null;
  paths: string[];
  /**
   * the deployment's `language` option for every file (CORPUS.json
   * `"language"`): SpiffWorkflow's own test models are Python without
   * declaring the spiffworkflow namespace, as SpiffWorkflow runs everything as Python
   */
  language?: string;
}

interface CorpusResult {
  name: string;
  dir: string;
  source: CorpusSource;
  bpmnFiles: number;
  dmnFiles: number;
  clusterRestarts: number;
  seconds: number;
  files: FileResult[];
}

// ---- the corpus on disk -----------------------------------------------------------

const isModel = (name: string) => /\.(bpmn|bpmn20\.xml)$/i.test(name);

function walk(dir: string, out: { bpmn: string[]; dmn: number } = { bpmn: [], dmn: 0 }): { bpmn: string[]; dmn: number } {
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (e.name === '.git' || e.name === 'node_modules') continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.isFile() && isModel(e.name)) out.bpmn.push(p);
    else if (e.isFile() && /\.dmn$/i.test(e.name)) out.dmn++;
  }
  return out;
}

function sourceOf(dir: string): CorpusSource {
  const manifest = join(dir, 'CORPUS.json');
  if (existsSync(manifest)) {
    const m = JSON.parse(readFileSync(manifest, 'utf8')) as Partial<CorpusSource>;
    return { repo: m.repo ?? null, commit: m.commit ?? null, paths: m.paths ?? [], ...(m.language !== undefined ? { language: m.language } : {}) };
  }
  const git = (...a: string[]) => {
    try {
      return execFileSync('git', ['-C', dir, ...a], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return null;
    }
  };
  return { repo: git('remote', 'get-url', 'origin'), commit: git('rev-parse', 'HEAD'), paths: [git('rev-parse', '--show-prefix') ?? '.'] };
}

/**
 * An incident message as a cause: as normaliseCause, and the unquoted ids
 * that runtime messages carry ("call activity Activity_0f25k4g: process
 * Level3 is not deployed", the incident's own element id) become … too.
 */
function normaliseIncident(message: string, elementId: string | null): string {
  let m = message;
  if (elementId) m = m.split(elementId).join('…');
  m = m.replace(/\b(call activity|process|subprocess|activity|element|gateway|task|event) (?!(?:is|has|of|the|a|an|with|without|failed|not)\b)[\w.:-]+/g, '$1 …');
  return normaliseCause(m);
}

/** id → isExecutable of every <process> element (any namespace prefix). */
function executableFlags(xml: string): Map<string, boolean | null> {
  const out = new Map<string, boolean | null>();
  for (const m of xml.matchAll(/<(?:[\w.-]+:)?process\b([^>]*)>/g)) {
    const attrs = m[1] ?? '';
    const id = /\sid\s*=\s*["']([^"']*)["']/.exec(attrs)?.[1];
    if (id === undefined) continue;
    const ex = /\sisExecutable\s*=\s*["']([^"']*)["']/.exec(attrs)?.[1];
    out.set(id, ex === undefined ? null : ex.trim() === 'true');
  }
  return out;
}

/** id → local tag name of every element with an id (userTask, parallelGateway, …). */
function elementTypes(xml: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of xml.matchAll(/<(?:[\w.-]+:)?([A-Za-z]+)\b[^>]*?\sid\s*=\s*["']([^"']+)["']/g)) {
    if (!out.has(m[2]!)) out.set(m[2]!, m[1]!);
  }
  return out;
}

/**
 * A problem message as a cause: quoted ids and names become '…' and id lists
 * in parentheses (…), so "process 'Process_1' has no none start event" and
 * "process 'Order' has …" count as one cause. The quoted word after
 * "format" / "language" (script format 'python') is the cause itself and stays.
 */
function normaliseCause(message: string): string {
  return message
    .replace(/(format|language) '([^']*)'/g, '$1 \u0000$2\u0000')
    .replace(/'[^']*'/g, "'…'")
    .replace(/(?<!=)"[^"]*"/g, '"…"')
    .replace(/\u0000/g, "'")
    .replace(/\((?:[^()]*,)+[^()]*\)/g, '(…)')
    .replace(/\b(line|column|col)\s+\d+/gi, '$1 N')
    .replace(/(?<![\w.])\d+(?![\w.])/g, 'N')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 240);
}

// ---- HTTP with a client-side deadline ---------------------------------------------------

type Answer = { kind: 'answer'; status: number; body: unknown; ms: number } | { kind: 'hung'; ms: number } | { kind: 'failed'; ms: number; error: string };

async function call(method: 'GET' | 'POST', url: string, body: unknown, timeoutMs: number): Promise<Answer> {
  const t0 = performance.now();
  const ms = () => Math.round(performance.now() - t0);
  try {
    const res = await fetch(url, {
      method,
      signal: AbortSignal.timeout(timeoutMs),
      ...(body !== undefined ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}),
    });
    // the body is read under the same deadline
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { kind: 'answer', status: res.status, body: parsed, ms: ms() };
  } catch (err) {
    const name = (err as { name?: string }).name;
    if (name === 'TimeoutError' || name === 'AbortError') return { kind: 'hung', ms: ms() };
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return { kind: 'failed', ms: ms(), error: cause?.code ?? cause?.message ?? String(err) };
  }
}

const obj = (v: unknown): Record<string, unknown> => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

// ---- the Baton under test -----------------------------------------------------------

interface Target {
  iso: Isolation;
  cluster: Cluster;
}

async function startTarget(): Promise<Target> {
  const iso = await isolate('corpus');
  try {
    // SWEEP_AFTER_MS: a start whose inline step failed is picked up by the step worker within the waitMs
    const cluster = await startCluster(iso, { stepWorkers: 1, schedulers: 1, serviceWorkers: 0, env: { SWEEP_AFTER_MS: '1000', SWEEP_INTERVAL_MS: '500' } });
    return { iso, cluster };
  } catch (err) {
    await iso.drop().catch(() => undefined);
    throw err;
  }
}

async function stopTarget(t: Target): Promise<void> {
  await t.cluster.stop();
  await t.iso.drop().catch((err: unknown) => console.error(`could not drop ${t.iso.schema}: ${String(err)}`));
}

const exited = (p: Proc) => p.child.exitCode !== null || p.child.signalCode !== null;
const healthUrl = (t: Target, p: Proc) => (p.role === 'api' ? `${t.cluster.base}/health` : `http://127.0.0.1:${p.healthPort}/health`);

/** Each Baton process → 'ok' when it answered /health with 200 within HEALTH_MS, else what happened. */
async function checkHealth(t: Target): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  await Promise.all(
    t.cluster.procs.map(async (p) => {
      if (exited(p)) {
        out[p.role] = `exited (${p.child.exitCode ?? p.child.signalCode})`;
        return;
      }
      const a = await call('GET', healthUrl(t, p), undefined, HEALTH_MS);
      out[p.role] = a.kind === 'answer' ? (a.status === 200 ? 'ok' : `HTTP ${a.status}`) : a.kind === 'hung' ? `no answer in ${HEALTH_MS} ms` : `failed: ${a.error}`;
    }),
  );
  return out;
}

async function diagnose(t: Target, processKey: string | undefined): Promise<Diagnosis> {
  const a = cpuSnapshot(t.cluster.procs);
  await sleep(1000);
  const b = cpuSnapshot(t.cluster.procs);
  const cores: Record<string, number> = {};
  // a process that exited meanwhile reads as 0 ms: no negative figure for it
  for (const [role, ms] of b.byRole) cores[role] = Math.max(0, Math.round(((ms - (a.byRole.get(role) ?? 0)) / (b.at - a.at)) * 100) / 100);
  const health = await checkHealth(t);
  let instances: unknown;
  if (processKey !== undefined && health.api === 'ok') {
    const r = await call('GET', `${t.cluster.base}/v1/process-instances?processKey=${encodeURIComponent(processKey)}&limit=5`, undefined, HEALTH_MS);
    if (r.kind === 'answer') {
      instances = (obj(r.body).items as unknown[] | undefined)?.map((i) => {
        const x = obj(i);
        return { id: x.id, status: x.status, activeElements: x.activeElements, incidents: x.incidents };
      });
    }
  }
  const logs: Record<string, string> = {};
  for (const p of t.cluster.procs) {
    const tail = p.output.join('').slice(-3000).trim();
    if (tail) logs[p.role] = tail;
  }
  return { cores, health, ...(instances !== undefined ? { instances } : {}), logs };
}

// ---- one file ------------------------------------------------------------------------

interface FileRun {
  result: FileResult;
  /** a hang or a crash: the cluster must be replaced before the next file */
  broken: boolean;
}

function failure(a: Answer, what: string): { outcome: 'hung' | 'failed'; detail: string } {
  return a.kind === 'hung' ? { outcome: 'hung', detail: `${what}: no answer within ${REQUEST_MS} ms` } : { outcome: 'failed', detail: `${what}: ${a.kind === 'failed' ? a.error : ''}` };
}

async function runFile(t: Target, root: string, path: string, language?: string): Promise<FileRun> {
  const content = readFileSync(path);
  const rel = relative(root, path);
  // the API takes names of up to 255 characters; a deep path keeps its tail
  const name = rel.length <= 255 ? rel : basename(rel).slice(-255);
  const faults: Fault[] = [];
  const result: FileResult = { file: rel, bytes: content.length, deploy: { outcome: 'failed', ms: 0 }, starts: [] };
  const api = t.cluster.base;
  let broken = false;
  const hangOrCrash = async (a: Answer, what: string, processKey?: string) => {
    const f = failure(a, what);
    faults.push({ kind: f.outcome === 'hung' ? 'hang' : 'crash', what, detail: f.detail, ...(processKey !== undefined ? { processKey } : {}), diagnosis: await diagnose(t, processKey) });
    broken = true;
  };

  const d = await call('POST', `${api}/v1/deployments`, { files: [{ name, content: content.toString('utf8') }], ...(language !== undefined ? { language } : {}) }, REQUEST_MS);
  if (d.kind !== 'answer') {
    result.deploy = { outcome: failure(d, 'deploy').outcome, ms: d.ms };
    await hangOrCrash(d, 'deploy');
  } else {
    const body = obj(d.body);
    if (d.status === 201) {
      const processes = ((body.processes as unknown[] | undefined) ?? []).map((p) => ({ key: String(obj(p).key), version: Number(obj(p).version) }));
      result.deploy = { outcome: 'accepted', httpStatus: d.status, ms: d.ms, processes };
    } else {
      const code = str(body.code) ?? `http_${d.status}`;
      const message = str(body.message) ?? '';
      const problems = Array.isArray(body.details) ? (body.details as unknown[]).map((p) => ({ elementId: str(obj(p).elementId) ?? null, message: String(obj(p).message) })) : undefined;
      const causes =
        code === 'invalid_model' && problems && problems.length > 0
          ? [...new Set(problems.map((p) => normaliseCause(p.message)))]
          : [normaliseCause(code === 'invalid_model' ? message : `${code}: ${message}`)];
      result.deploy = { outcome: d.status < 500 ? 'rejected' : 'http_error', httpStatus: d.status, ms: d.ms, code, message, ...(problems ? { problems } : {}), causes };
      if (d.status >= 500) faults.push({ kind: 'server_error', what: 'deploy', detail: `${d.status} ${code}: ${message}` });
    }
  }

  const flags = executableFlags(content.toString('utf8'));
  let types: Map<string, string> | null = null;
  for (const p of result.deploy.processes ?? []) {
    const s: StartResult = { key: p.key, version: p.version, executable: flags.get(p.key) ?? null, outcome: 'skipped' };
    result.starts.push(s);
    if (broken) continue; // the cluster is being replaced: the rest of this file is not run
    const a = await call('POST', `${api}/v1/process-instances`, { processKey: p.key, version: p.version, variables: {}, waitMs: WAIT_MS }, REQUEST_MS);
    s.ms = a.ms;
    if (a.kind !== 'answer') {
      s.outcome = failure(a, 'start').outcome;
      await hangOrCrash(a, `start ${p.key}`, p.key);
      continue;
    }
    s.httpStatus = a.status;
    const body = obj(a.body);
    if (a.status !== 201 && a.status !== 200) {
      s.code = str(body.code) ?? `http_${a.status}`;
      s.message = str(body.message) ?? String(a.body).slice(0, 300);
      s.outcome = s.code === 'no_none_start_event' ? 'not_startable' : 'http_error';
      if (a.status >= 500) faults.push({ kind: 'server_error', what: `start ${p.key}`, processKey: p.key, detail: `${a.status} ${s.code}: ${s.message}` });
      continue;
    }
    const status = str(body.status) ?? 'unknown';
    s.outcome = (['completed', 'waiting', 'error', 'terminated', 'running', 'suspended'] as const).find((x) => x === status) ?? 'http_error';
    if (s.outcome === 'http_error') s.message = `unknown status ${status}`;
    s.instanceId = str(body.id);
    const inc = Array.isArray(body.incidents) ? (body.incidents as unknown[]).map(obj) : [];
    if (inc.length > 0) s.incidents = inc.map((i) => ({ code: String(i.code), elementId: str(i.elementId) ?? null, message: String(i.message) }));
    if (Array.isArray(body.activeElements) && body.activeElements.length > 0) {
      s.activeElements = body.activeElements.map(String);
      types ??= elementTypes(content.toString('utf8'));
      s.activeTypes = [...new Set(s.activeElements.map((id) => types!.get(id) ?? '?'))].sort();
    }
    if (Array.isArray(body.waits) && body.waits.length > 0) s.waits = body.waits.map((w) => String(obj(w).kind));
    // Leave nothing running behind: timers and loops of earlier files must not load later ones.
    if (s.instanceId !== undefined && s.outcome !== 'completed' && s.outcome !== 'terminated') {
      const c = await call('POST', `${api}/v1/process-instances/${s.instanceId}/cancel`, { waitMs: CANCEL_WAIT_MS }, REQUEST_MS);
      if (c.kind !== 'answer') {
        s.cancel = { outcome: failure(c, 'cancel').outcome };
        await hangOrCrash(c, `cancel ${p.key}`, p.key);
      } else if (c.status >= 300) {
        const cb = obj(c.body);
        s.cancel = { outcome: 'http_error', httpStatus: c.status, ...(str(cb.code) ? { code: str(cb.code)! } : {}), ...(str(cb.message) ? { message: str(cb.message)! } : {}) };
        if (c.status >= 500) faults.push({ kind: 'server_error', what: `cancel ${p.key}`, processKey: p.key, detail: `${c.status} ${str(cb.code)}: ${str(cb.message)}` });
      }
    }
  }

  if (!broken) {
    const health = await checkHealth(t);
    const bad = Object.entries(health).filter(([, v]) => v !== 'ok');
    if (bad.length > 0) {
      const diagnosis = await diagnose(t, result.starts.at(-1)?.key);
      // A refused or reset connection, or a process found exited (also a second later, in the
      // diagnosis: a killed child is reaped after its socket closed), is a crash; no answer is a hang.
      const crashed = [...bad.map(([, v]) => v), ...Object.values(diagnosis.health)].some((v) => v.startsWith('exited') || v.startsWith('failed'));
      faults.push({ kind: crashed ? 'crash' : 'hang', what: '/health', detail: bad.map(([k, v]) => `${k}: ${v}`).join('; '), diagnosis });
      broken = true;
    }
  }
  if (faults.length > 0) result.faults = faults;
  return { result, broken };
}

// ---- one corpus -------------------------------------------------------------------------

async function runCorpus(dir: string): Promise<CorpusResult> {
  const root = resolve(dir);
  const found = walk(root);
  const files = MATCH ? found.bpmn.filter((f) => MATCH.test(relative(root, f))) : found.bpmn;
  const name = basename(root);
  const source = sourceOf(root);
  const out: CorpusResult = { name, dir: root, source, bpmnFiles: files.length, dmnFiles: found.dmn, clusterRestarts: 0, seconds: 0, files: [] };
  process.stderr.write(`${name}: ${files.length} BPMN files, ${found.dmn} DMN (${source.repo ?? '?'} @ ${source.commit?.slice(0, 10) ?? '?'})\n`);
  const t0 = performance.now();
  let target = await startTarget();
  try {
    for (const [i, f] of files.entries()) {
      const run = await runFile(target, root, f, source.language);
      out.files.push(run.result);
      const r = run.result;
      const mark = r.faults?.some((x) => x.kind !== 'server_error') ? ' !!' : '';
      process.stderr.write(
        `  [${i + 1}/${files.length}] ${r.file}: ${r.deploy.outcome}${r.starts.length ? ` → ${r.starts.map((s) => s.outcome).join(',')}` : ''}${mark}\n`,
      );
      if (run.broken) {
        process.stderr.write(`    ${r.faults?.map((x) => `${x.kind} (${x.what}): ${x.detail ?? ''}`).join('\n    ')}\n    replacing the Baton cluster\n`);
        await stopTarget(target);
        out.clusterRestarts++;
        target = await startTarget();
      }
    }
  } finally {
    await stopTarget(target);
  }
  out.seconds = Math.round((performance.now() - t0) / 100) / 10;
  return out;
}

// ---- report -------------------------------------------------------------------------------

interface Row {
  corpus: string;
  files: number;
  dmn: number;
  accepted: number;
  rejected: number;
  processes: number;
  notStartable: number;
  started: number;
  completed: number;
  waiting: number;
  error: number;
  terminated: number;
  other: number;
  hung: number;
  crashed: number;
}

function rowOf(c: CorpusResult): Row {
  const starts = c.files.flatMap((f) => f.starts);
  const n = (o: StartOutcome) => starts.filter((s) => s.outcome === o).length;
  const faults = c.files.flatMap((f) => f.faults ?? []);
  return {
    corpus: c.name,
    files: c.bpmnFiles,
    dmn: c.dmnFiles,
    accepted: c.files.filter((f) => f.deploy.outcome === 'accepted').length,
    rejected: c.files.filter((f) => f.deploy.outcome === 'rejected').length,
    processes: starts.length,
    notStartable: n('not_startable'),
    started: starts.filter((s) => s.httpStatus === 201 || s.httpStatus === 200).length,
    completed: n('completed'),
    waiting: n('waiting'),
    error: n('error'),
    terminated: n('terminated'),
    other: n('running') + n('suspended') + n('http_error') + n('skipped') + c.files.filter((f) => f.deploy.outcome === 'http_error').length,
    hung: faults.filter((x) => x.kind === 'hang').length,
    crashed: faults.filter((x) => x.kind === 'crash').length,
  };
}

const COLUMNS: Array<[keyof Row, string]> = [
  ['corpus', 'corpus'],
  ['files', 'files'],
  ['dmn', 'dmn'],
  ['accepted', 'accepted'],
  ['rejected', 'rejected'],
  ['processes', 'processes'],
  ['notStartable', 'no none start'],
  ['started', 'started'],
  ['completed', 'completed'],
  ['waiting', 'waiting'],
  ['error', 'error'],
  ['terminated', 'terminated'],
  ['other', 'other'],
  ['hung', 'hung'],
  ['crashed', 'crashed'],
];

function table(rows: Row[]): string {
  const cells = [COLUMNS.map(([, h]) => h), ...rows.map((r) => COLUMNS.map(([k]) => String(r[k])))];
  const lines = cells.map((r) => `| ${r.join(' | ')} |`);
  lines.splice(1, 0, `|${COLUMNS.map(([k]) => (k === 'corpus' ? '---' : '---:')).join('|')}|`);
  return lines.join('\n');
}

function top(counts: Map<string, { files: number; n: number }>, limit: number): Array<{ cause: string; files: number; n: number }> {
  return [...counts]
    .map(([cause, v]) => ({ cause, ...v }))
    .sort((a, b) => b.files - a.files || b.n - a.n || a.cause.localeCompare(b.cause))
    .slice(0, limit);
}

function summarise(corpora: CorpusResult[]) {
  const rows = corpora.map(rowOf);
  const total: Row = { corpus: 'total', files: 0, dmn: 0, accepted: 0, rejected: 0, processes: 0, notStartable: 0, started: 0, completed: 0, waiting: 0, error: 0, terminated: 0, other: 0, hung: 0, crashed: 0 };
  for (const r of rows) for (const [k] of COLUMNS) if (k !== 'corpus') total[k] += r[k];
  const causes = new Map<string, { files: number; n: number }>();
  const incidentCodes = new Map<string, { files: number; n: number }>();
  const incidentCauses = new Map<string, { files: number; n: number }>();
  const httpErrors = new Map<string, { files: number; n: number }>();
  const waitingAt = new Map<string, { files: number; n: number }>();
  const bump = (m: Map<string, { files: number; n: number }>, k: string, n: number) => {
    const v = m.get(k) ?? { files: 0, n: 0 };
    v.files++;
    v.n += n;
    m.set(k, v);
  };
  for (const f of corpora.flatMap((c) => c.files)) {
    if (f.deploy.outcome === 'rejected') {
      for (const cause of f.deploy.causes ?? []) bump(causes, cause, (f.deploy.problems ?? []).filter((p) => normaliseCause(p.message) === cause).length || 1);
    }
    for (const s of f.starts) {
      // counted once per instance ("files" column = instances)
      for (const code of new Set((s.incidents ?? []).map((i) => i.code))) bump(incidentCodes, code, (s.incidents ?? []).filter((i) => i.code === code).length);
      for (const cause of new Set((s.incidents ?? []).map((i) => `${i.code}: ${normaliseIncident(i.message, i.elementId)}`))) bump(incidentCauses, cause, 1);
      if (s.outcome === 'waiting') bump(waitingAt, `${(s.activeTypes ?? []).join(' + ') || '(nothing active)'}${s.waits ? ` [waits: ${[...new Set(s.waits)].sort().join(', ')}]` : ''}`, 1);
      if (s.outcome === 'http_error') bump(httpErrors, `${s.httpStatus ?? '?'} ${s.code ?? ''}: ${normaliseCause(s.message ?? '')}`, 1);
      if (s.cancel) bump(httpErrors, `cancel ${s.cancel.httpStatus ?? s.cancel.outcome} ${s.cancel.code ?? ''}: ${normaliseCause(s.cancel.message ?? '')}`, 1);
    }
  }
  const problems = corpora.flatMap((c) =>
    c.files.flatMap((f) => (f.faults ?? []).map((x) => ({ corpus: c.name, file: f.file, kind: x.kind, what: x.what, detail: x.detail ?? '', cores: x.diagnosis?.cores }))),
  );
  return {
    rows: [...rows, total],
    rejectionCauses: top(causes, 1000),
    incidentCodes: top(incidentCodes, 1000),
    incidentCauses: top(incidentCauses, 1000),
    startHttpErrors: top(httpErrors, 1000),
    waitingAt: top(waitingAt, 1000),
    hangsAndCrashes: problems,
  };
}

// ---- main -------------------------------------------------------------------------------

const machine = await machineInfo();
const stamp = machine.at.replace(/[:.]/g, '-');
const resultsDir = new URL('./results/', import.meta.url);
mkdirSync(resultsDir, { recursive: true });
const outFile = new URL(`${stamp}-corpus.json`, resultsDir);
const corpora: CorpusResult[] = [];
/** Written after every corpus too, so a run that dies half-way leaves what it measured. One line per file result keeps it readable and small. */
const save = (complete: boolean) => {
  const head = { kind: 'corpus', complete, machine, options: { requestMs: REQUEST_MS, waitMs: WAIT_MS, healthMs: HEALTH_MS, match: MATCH?.source ?? null }, summary: summarise(corpora) };
  const files = (c: CorpusResult) => (c.files.length === 0 ? '[]' : `[\n${c.files.map((f) => `        ${JSON.stringify(f)}`).join(',\n')}\n      ]`);
  const body = corpora.map((c) => `    ${JSON.stringify({ ...c, files: null }, null, 2).replace(/\n/g, '\n    ').replace('"files": null', `"files": ${files(c)}`)}`);
  writeFileSync(outFile, `${JSON.stringify(head, null, 2).replace(/\n}$/, `,\n  "corpora": [\n${body.join(',\n')}\n  ]\n}`)}\n`);
};
cleanUpOnCrash((what, err) => {
  process.stderr.write(`\n${what}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  save(false);
});

const stale = await dropStale();
if (stale.length) process.stderr.write(`dropped ${stale.length} stale bench schema(s)\n`);
process.stderr.write(`Baton corpus run, commit ${machine.git.commit.slice(0, 10)}${machine.git.dirty ? ' (dirty tree)' : ''}; request deadline ${REQUEST_MS} ms, waitMs ${WAIT_MS}\n`);
const t0 = performance.now();
for (const dir of dirs) {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    process.stderr.write(`${dir}: not a directory, skipped\n`);
    continue;
  }
  corpora.push(await runCorpus(dir));
  save(false);
}
save(true);

const s = summarise(corpora);
const pad = (n: number) => String(n).padStart(5);
console.log(`\nBaton corpus run — ${machine.at}, commit ${machine.git.commit.slice(0, 10)}${machine.git.dirty ? ' (dirty tree)' : ''}, ${Math.round((performance.now() - t0) / 1000)} s\n`);
for (const c of corpora) console.log(`  ${c.name}: ${c.source.repo ?? '?'} @ ${c.source.commit ?? '?'} — ${c.source.paths.join(', ')}`);
console.log(`\n${table(s.rows)}\n`);
console.log('Top rejection causes (files · problems):');
for (const r of s.rejectionCauses.slice(0, 25)) console.log(`${pad(r.files)} · ${pad(r.n)}  ${r.cause}`);
console.log('\nIncident codes of started instances (instances · incidents):');
for (const r of s.incidentCodes.slice(0, 15)) console.log(`${pad(r.files)} · ${pad(r.n)}  ${r.cause}`);
console.log('\nTop incident causes (instances):');
for (const r of s.incidentCauses.slice(0, 20)) console.log(`${pad(r.files)}  ${r.cause}`);
console.log('\nWaiting instances by the element types they wait in (instances):');
for (const r of s.waitingAt.slice(0, 20)) console.log(`${pad(r.files)}  ${r.cause}`);
if (s.startHttpErrors.length) {
  console.log('\nStarts and cancels answered with an error other than no_none_start_event (count):');
  for (const r of s.startHttpErrors.slice(0, 15)) console.log(`${pad(r.files)}  ${r.cause}`);
}
console.log(`\nHangs, crashes and 5xx answers: ${s.hangsAndCrashes.length === 0 ? 'none' : ''}`);
for (const h of s.hangsAndCrashes) console.log(`  ${h.kind.toUpperCase()} ${h.corpus}/${h.file} (${h.what}): ${h.detail}${h.cores ? ` — cores ${JSON.stringify(h.cores)}` : ''}`);
console.log(`\nwritten: bench/results/${stamp}-corpus.json`);
// Every Baton process is stopped and every schema dropped; end even if a socket lingers.
process.exit(0);
