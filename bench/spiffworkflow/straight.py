#!/usr/bin/python3
"""Reference measurement: SpiffWorkflow running a straight-through BPMN model in-process.

SpiffWorkflow is the Python library SpiffArena executes BPMN with. This script
measures how many instances per second it completes of a model with one Python
script task and one Python gateway condition, so that Baton's Python mode can be
compared to it. It is our code; SpiffWorkflow itself is not part of this
repository: point the script at a checkout of its source (see bench/README.md).

One run (prints one JSON line):

    /usr/bin/python3 bench/spiffworkflow/straight.py /tmp/spiffworkflow \
        bench/models/python-straight.bpmn [N]

Several runs, each in a fresh interpreter, with their median (and optionally a
baseline model measured the same way, and the whole written to a results file):

    /usr/bin/python3 bench/spiffworkflow/straight.py /tmp/spiffworkflow \
        bench/models/python-straight.bpmn 20000 --runs 3 \
        --baseline bench/models/python-straight-empty.bpmn --out bench/results

What is timed, per instance: BpmnWorkflow(spec) (the task tree is built and
predicted), the start data set on the workflow's start task, do_engine_steps()
until the workflow is completed, and the check that it completed with the
expected data. The model is parsed once, before timing (SpiffBpmnParser with
the library's validator, get_spec / get_subprocess_specs, as its docs and tests
do). Scripts and conditions run with the library's default PythonScriptEngine
(TaskDataEnvironment: Python exec/eval over the task data). A warm-up of
min(1000, N) instances runs before the timed ones.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone

START_DATA = {'price': 10, 'qty': 3}
EXPECTED_TOTAL = 30  # price * qty; not > 1000, so the gateway takes its default flow


def spiff_commit(src):
    try:
        out = subprocess.run(['git', '-C', src, 'rev-parse', 'HEAD'], capture_output=True, text=True, check=True)
        commit = out.stdout.strip()
        out = subprocess.run(['git', '-C', src, 'describe', '--tags', '--exact-match'], capture_output=True, text=True)
        return commit, (out.stdout.strip() or None)
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get('SPIFF_COMMIT', 'unknown'), None


def load_spiff(src):
    src = os.path.abspath(src)
    sys.path.insert(0, src)
    import SpiffWorkflow
    if not os.path.abspath(SpiffWorkflow.__file__).startswith(src + os.sep):
        raise SystemExit(f'SpiffWorkflow was imported from {SpiffWorkflow.__file__}, not from {src}')
    from SpiffWorkflow.version import __version__
    return __version__


def parse(model, process_id):
    from SpiffWorkflow.spiff.parser import SpiffBpmnParser, VALIDATOR
    parser = SpiffBpmnParser(validator=VALIDATOR)
    parser.add_bpmn_file(model)
    if process_id is None:
        ids = parser.get_process_ids()
        if len(ids) != 1:
            raise SystemExit(f'{model} has processes {ids}; choose one with --process')
        process_id = ids[0]
    return process_id, parser.get_spec(process_id), parser.get_subprocess_specs(process_id)


def run_once(src, model, process_id, n):
    version = load_spiff(src)
    commit, tag = spiff_commit(src)
    from SpiffWorkflow.bpmn import BpmnWorkflow
    from SpiffWorkflow.util.task import TaskState

    process_id, spec, subprocess_specs = parse(model, process_id)
    has_script = any(getattr(ts, 'script', None) for ts in spec.task_specs.values())

    def instance():
        workflow = BpmnWorkflow(spec, subprocess_specs)
        # The workflow's own start task (spec 'Start', READY on creation); the BPMN start
        # event and everything after it inherit its data, as in SpiffWorkflow's tests.
        start = workflow.get_next_task(end_at_spec='Start')
        start.data = dict(START_DATA)
        workflow.do_engine_steps()
        if not workflow.is_completed():
            raise SystemExit('a workflow did not complete')
        if has_script and workflow.data.get('total') != EXPECTED_TOTAL:
            raise SystemExit(f'wrong total: {workflow.data!r}')
        return workflow

    # One instance inspected in full: every task completed, and for the model with the
    # gateway, the default flow's end event reached and the other one not.
    workflow = instance()
    done = {t.task_spec.name for t in workflow.get_tasks(state=TaskState.COMPLETED)}
    if 'endLarge' in spec.task_specs and ('endSmall' not in done or 'endLarge' in done):
        raise SystemExit(f'unexpected path: {sorted(done)}')

    for _ in range(min(1000, n)):
        instance()
    started = time.perf_counter()
    for _ in range(n):
        instance()
    seconds = time.perf_counter() - started
    return {
        'engine': 'SpiffWorkflow',
        'version': version,
        'commit': commit,
        'tag': tag,
        'model': os.path.relpath(os.path.abspath(model)),
        'process': process_id,
        'instances': n,
        'seconds': round(seconds, 4),
        'perSecond': round(n / seconds, 1),
        'python': platform.python_version(),
    }


def child_run(args, model, process_id):
    cmd = [sys.executable, os.path.abspath(__file__), args.spiff, model, str(args.n)]
    if process_id:
        cmd += ['--process', process_id]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps(result), flush=True)
    return result


def summary(runs):
    median = statistics.median(r['perSecond'] for r in runs)
    return {'perSecond': [r['perSecond'] for r in runs], 'median': median}


def machine():
    model = None
    try:
        with open('/proc/cpuinfo') as f:
            model = next((l.split(':', 1)[1].strip() for l in f if l.startswith('model name')), None)
    except OSError:
        pass
    import lxml.etree
    return {
        'cpu': model,
        'cpus': os.cpu_count(),
        'loadavg': os.getloadavg(),
        'python': platform.python_version(),
        'pythonExecutable': sys.executable,
        'lxml': lxml.etree.__version__,
        'platform': platform.platform(),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('spiff', help='path of a SpiffWorkflow source checkout (the folder holding SpiffWorkflow/)')
    ap.add_argument('model', help='BPMN file')
    ap.add_argument('n', nargs='?', type=int, default=20000, help='timed instances per run (default 20000)')
    ap.add_argument('--process', help='process id (default: the only process in the file)')
    ap.add_argument('--runs', type=int, default=1, help='runs, each in a fresh interpreter; >1 prints the median')
    ap.add_argument('--baseline', help='a second BPMN file measured the same way (e.g. start → end)')
    ap.add_argument('--out', help='folder to write <ISO timestamp>-spiffworkflow-straight.json to')
    args = ap.parse_args()

    if args.runs == 1 and not args.baseline and not args.out:
        print(json.dumps(run_once(args.spiff, args.model, args.process, args.n)))
        return

    at = datetime.now(timezone.utc)
    info = machine()
    runs = [child_run(args, args.model, args.process) for _ in range(args.runs)]
    baseline = [child_run(args, args.baseline, None) for _ in range(args.runs)] if args.baseline else None
    info['loadavgAfter'] = os.getloadavg()
    first = runs[0]
    record = {
        'engine': 'SpiffWorkflow',
        'version': first['version'],
        'commit': first['commit'],
        'tag': first['tag'],
        'at': at.isoformat().replace('+00:00', 'Z'),
        'command': ' '.join([os.path.relpath(sys.executable) if not sys.executable.startswith('/') else sys.executable] + sys.argv),
        'model': first['model'],
        'process': first['process'],
        'instances': args.n,
        'startData': START_DATA,
        'machine': info,
        'runs': runs,
        'median': summary(runs)['median'],
    }
    if baseline:
        record['baseline'] = {'model': baseline[0]['model'], 'process': baseline[0]['process'],
                              'runs': baseline, 'median': summary(baseline)['median']}
    print(json.dumps({'median': record['median'], **({'baselineMedian': record['baseline']['median']} if baseline else {})}))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        stamp = at.strftime('%Y-%m-%dT%H-%M-%S-') + f'{at.microsecond // 1000:03d}Z'
        path = os.path.join(args.out, f'{stamp}-spiffworkflow-straight.json')
        with open(path, 'w') as f:
            json.dump(record, f, indent=2)
            f.write('\n')
        print(path, file=sys.stderr)


if __name__ == '__main__':
    main()
