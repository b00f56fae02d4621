/**
 * The Python evaluator (src/expressions/python): SpiffWorkflow's semantics
 * (globals are the variables, assignments and `del` come back), the
 * conversions across the boundary, errors with line numbers, and the limits.
 * One evaluator serves the file: Pyodide takes seconds to load.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JsonObject } from '../../src/errors.js';
import { ExpressionError } from '../../src/expressions/index.js';
import { createPythonEvaluator, type PythonEvaluator } from '../../src/expressions/python/index.js';

let ev: PythonEvaluator;

beforeAll(() => {
  ev = createPythonEvaluator({ timeoutMs: 1000, hardTimeoutMs: 4000, memoryLimitMb: 128, fastPath: false });
  // Wait for Pyodide here, not inside the first test's time limit.
  ev.condition('True', {});
}, 60_000);

afterAll(() => {
  ev?.close();
});

function failure(fn: () => unknown): ExpressionError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ExpressionError);
    return e as ExpressionError;
  }
  throw new Error('expected an ExpressionError');
}

describe('scripts', () => {
  it('reports what a script assigns, with the variables as its globals', () => {
    expect(ev.script('total = price * qty', { price: 2.5, qty: 4, other: 1 })).toEqual({ assigned: { total: 10 } });
  });

  it('reports a variable changed in place, and not one left as it was', () => {
    const variables: JsonObject = { items: [1, 2], order: { status: 'new' }, same: { a: [1] } };
    expect(ev.script("items.append(3)\norder['status'] = 'paid'\nx = same['a'][0]", variables)).toEqual({
      assigned: { items: [1, 2, 3], order: { status: 'paid' }, x: 1 },
    });
    // the caller's values are untouched
    expect(variables).toEqual({ items: [1, 2], order: { status: 'new' }, same: { a: [1] } });
  });

  it('does not report an object variable with non-ASCII text or floats that it only read', () => {
    expect(ev.script("y = o['s']", { o: { s: 'é ☃ 😀', f: [0.1, 1e21, 1e-7, -0], n: null } })).toEqual({ assigned: { y: 'é ☃ 😀' } });
  });

  it('reports a rebinding to another type, not one to an equal value', () => {
    expect(ev.script('a = True\nb = 2', { a: 1, b: 2 })).toEqual({ assigned: { a: true } });
  });

  it('reports `del` as deleted, and nothing for a name never sent', () => {
    expect(ev.script('del gone\nkept = 1', { gone: 5, untouched: 1 })).toEqual({ assigned: { kept: 1 }, deleted: ['gone'] });
    expect(ev.script('x = 1\ndel x', {})).toEqual({ assigned: {} });
  });

  it('keeps loop variables and top-level names, drops functions, classes and modules', () => {
    const r = ev.script(
      'import json\nimport datetime as dt\ndef f(x):\n    return x * 2\nclass C:\n    pass\nc = C()\ng = lambda: 1\nfor i in range(3):\n    pass\ny = f(21)',
      {},
    );
    expect(r).toEqual({ assigned: { i: 2, y: 42 } });
  });

  it('runs each evaluation in fresh globals: nothing one defines reaches the next', () => {
    ev.script('leak = 1\ndef helper():\n    return 1', {});
    expect(failure(() => ev.expression('leak', {})).message).toBe("NameError: name 'leak' is not defined");
    expect(failure(() => ev.expression('helper()', {})).code).toBe('script_error');
  });

  it('offers the SpiffArena globals', () => {
    const r = ev.script(
      [
        'a = datetime(2024, 1, 2, 3, 4, 5).isoformat()',
        'b = (datetime(2024, 1, 2) + timedelta(days=1)).day',
        'c = json.loads(json.dumps({"k": [1, 2]}))',
        "d = re.sub(r'\\d', '#', 'a1b2')",
        'e = len(str(uuid.uuid4()))',
        'f = calendar.isleap(2024)',
        "g = str(decimal.Decimal('1.10') + decimal.Decimal('2.20'))",
        'h = isinstance(time.time(), float)',
        'i = 0 <= random.random() < 1',
        'j = sorted(set([3, 1, 2]))',
        'k = [x for x in map(abs, filter(lambda v: v < 0, [-1, 2, -3]))]',
        'l = (all([1, 1]), any([0, 1]), max(1, 2), min(1, 2), sum([1, 2]), round(2.567, 2))',
        "m = format(3.14159, '.2f')",
        'n = dict(zip(["a", "b"], range(2)))',
        'o = list(enumerate("ab"))',
        'from datetime import date',
        'p = date(2024, 2, 29).isoformat()',
      ].join('\n'),
      {},
    );
    expect(r.assigned).toEqual({
      a: '2024-01-02T03:04:05',
      b: 3,
      c: { k: [1, 2] },
      d: 'a#b#',
      e: 36,
      f: true,
      g: '3.30',
      h: true,
      i: true,
      j: [1, 2, 3],
      k: [1, 3],
      l: [true, true, 2, 1, 3, 2.57],
      m: '3.14',
      n: { a: 0, b: 1 },
      o: [
        [0, 'a'],
        [1, 'b'],
      ],
      p: '2024-02-29',
    });
  });

  it("lets a script `del` an offered global, as SpiffArena's `del time` does, and reports one it rebinds", () => {
    // sample-process-models' message_sender.bpmn: SpiffArena puts its globals in the task data dict the script runs in
    const r = ev.script('timestamp = time.time()\ntopic = f"topic_{timestamp}"\ndel time', {});
    expect(typeof r.assigned.timestamp).toBe('number');
    expect(r.assigned.topic).toBe(`topic_${String(r.assigned.timestamp)}`);
    expect(r.deleted).toBeUndefined();
    expect(Object.keys(r.assigned).sort()).toEqual(['timestamp', 'topic']);
    // the next evaluation has it again
    expect(ev.expression('isinstance(time.time(), float)', {})).toBe(true);
    expect(ev.script('import json\ndel json\ndel random\ndel datetime\nok = True', {})).toEqual({ assigned: { ok: true } });
    // a rebinding is a variable like any other; a variable of that name hides the global
    expect(ev.script("date = '2024-01-01'", {})).toEqual({ assigned: { date: '2024-01-01' } });
    expect(ev.expression('time + 1', { time: 5 })).toBe(6);
    expect(ev.script('time = time + 1', { time: 5 })).toEqual({ assigned: { time: 6 } });
    // functions of the script see the globals
    expect(ev.script('def f():\n    return json.dumps([timedelta(days=1).days])\nx = f()', {})).toEqual({ assigned: { x: '[1]' } });
  });

  it("does not report what Python leaves in the globals: a deprecation warning's __warningregistry__, annotations", () => {
    // sample-process-models' local-date-and-time models call datetime.utcnow(), deprecated since Python 3.12
    expect(ev.script('x = datetime.utcnow().year > 2000', {})).toEqual({ assigned: { x: true } });
    expect(ev.script('y = datetime.utcfromtimestamp(0).year', {})).toEqual({ assigned: { y: 1970 } });
    expect(ev.script('a: int = 1\nb: str', {})).toEqual({ assigned: { a: 1 } });
  });

  it("offers SpiffArena's sanitize_for_md", () => {
    // spiff-arena tests/data/manual-task-with-sanitized-markdown
    expect(ev.script('from_script_task = sanitize_for_md("Sanitized | from | script | task")', {})).toEqual({
      assigned: { from_script_task: 'Sanitized \\| from \\| script \\| task' },
    });
    expect(ev.expression("sanitize_for_md('a_b\\n`c` [x](y) #1!')", {})).toBe('a\\_b\\`c\\` \\[x\\]\\(y\\) \\#1\\!');
    expect(failure(() => ev.expression('sanitize_for_md(1)', {})).message).toMatch(/^TypeError: /);
  });

  it('time.sleep sleeps, and a sleep past the time limit is script_timeout without losing the process', () => {
    // spiff-arena tests/data/parallel_service_task_callback: time.sleep(0.1)
    let started = performance.now();
    expect(ev.script('time.sleep(0.1)\nok = True', {})).toEqual({ assigned: { ok: true } });
    expect(performance.now() - started).toBeGreaterThanOrEqual(95);
    expect(failure(() => ev.script('time.sleep(-1)', {})).message).toBe('ValueError: sleep length must be non-negative');
    expect(failure(() => ev.script("time.sleep('1')", {})).message).toMatch(/^TypeError: /);
    const pid = ev.sandboxPid();
    started = performance.now();
    expect(failure(() => ev.script('import time as t\nt.sleep(60)', {})).code).toBe('script_timeout');
    expect(performance.now() - started).toBeLessThan(3000);
    expect(ev.sandboxPid()).toBe(pid);
    expect(ev.expression('1 + 1', {})).toBe(2);
  });

  it('reuses a compiled source with other variables', () => {
    for (let i = 0; i < 20; i++) expect(ev.script('y = x * 2', { x: i }).assigned).toEqual({ y: i * 2 });
  });
});

describe('variables', () => {
  it('sends only the variables the source names', () => {
    // a BigInt is not JSON: it fails only when the source names it
    const variables = { amount: 5, odd: 1n } as unknown as JsonObject;
    expect(ev.condition('amount > 1', variables)).toBe(true);
    expect(failure(() => ev.condition('odd > 1', variables)).code).toBe('script_error');
  });

  it('a source with non-ASCII characters gets every variable (NFKC folds identifiers)', () => {
    expect(ev.expression('\uff52\uff41\uff54\uff45 * 2', { rate: 21 })).toBe(42);
  });

  it('large variables and results travel beyond the shared buffer', () => {
    // ~300 KB of JSON: more than the 256 KB of the shared buffer
    const items = Array.from({ length: 10_000 }, (_, i) => ({ id: i, name: `item ${i}` }));
    const r = ev.script("items.append({'id': -1, 'name': 'last'})\ncount = len(items)", { items });
    expect(r.assigned.count).toBe(10_001);
    expect((r.assigned.items as unknown[]).length).toBe(10_001);
    expect(items.length).toBe(10_000);
  });
});

describe('conditions and expressions', () => {
  it('evaluates Python conditions', () => {
    expect(ev.condition('amount > 1000 and approved', { amount: 2000, approved: true })).toBe(true);
    expect(ev.condition('amount > 1000 and approved', { amount: 2000, approved: false })).toBe(false);
    expect(ev.condition('len(items) == 0', { items: [] })).toBe(true);
    expect(ev.condition('len(items) == 0', { items: [1] })).toBe(false);
    expect(ev.condition('x is None', { x: null })).toBe(true);
    expect(ev.condition('x is None', { x: 0 })).toBe(false);
    expect(ev.condition('not flag', { flag: false })).toBe(true);
    expect(ev.condition("customer['tier'] == 'gold'", { customer: { tier: 'gold' } })).toBe(true);
    // Python truthiness
    expect(ev.condition('items', { items: [] })).toBe(false);
    expect(ev.condition('name', { name: 'x' })).toBe(true);
  });

  it('accepts surrounding blank lines and spaces', () => {
    expect(ev.condition('\n  amount > 1\n', { amount: 2 })).toBe(true);
  });

  it('evaluates expressions to JSON', () => {
    expect(ev.expression('price * qty', { price: 2, qty: 3 })).toBe(6);
    expect(ev.expression("[i * 2 for i in items]", { items: [1, 2] })).toEqual([2, 4]);
    expect(ev.expression("{'a': None, 'b': True}", {})).toEqual({ a: null, b: true });
  });

  it('refuses a statement as a condition', () => {
    expect(failure(() => ev.condition('x = 1', {})).code).toBe('syntax_error');
  });
});

describe('conversions', () => {
  it('JSON in: null/true/false are None/True/False', () => {
    expect(ev.expression('[a is None, b is True, c is False, isinstance(d, int), isinstance(e, float)]', { a: null, b: true, c: false, d: 1, e: 1.5 })).toEqual([
      true,
      true,
      true,
      true,
      true,
    ]);
  });

  it('datetime, date and time become ISO 8601 strings', () => {
    expect(ev.script('a = datetime(2024, 5, 6, 7, 8, 9, 123000)\nb = a.date()\nc = a.time()', {}).assigned).toEqual({
      a: '2024-05-06T07:08:09.123000',
      b: '2024-05-06',
      c: '07:08:09.123000',
    });
    expect(ev.expression('datetime(2024, 1, 1, tzinfo=datetime.now().astimezone().tzinfo).isoformat()[:10]', {})).toBe('2024-01-01');
  });

  it('timedelta becomes an ISO 8601 duration, UUID its string', () => {
    expect(ev.script('a = timedelta(days=1, hours=2, minutes=3, seconds=4.5)\nb = timedelta(0)\nc = -timedelta(hours=1)', {}).assigned).toEqual({
      a: 'P1DT2H3M4.5S',
      b: 'PT0S',
      c: '-PT1H',
    });
    expect(ev.expression("uuid.UUID('12345678123456781234567812345678')", {})).toBe('12345678-1234-5678-1234-567812345678');
  });

  it('Decimal becomes a number, or a string when a number would lose precision', () => {
    expect(ev.script("a = Decimal('0.1')\nb = Decimal('42')\nc = Decimal('0.12345678901234567890123')\nd = Decimal('123456789012345678901234567890')", {}).assigned).toEqual({
      a: 0.1,
      b: 42,
      c: '0.12345678901234567890123',
      d: '123456789012345678901234567890',
    });
  });

  it('tuples and sets become lists, NaN and infinities null', () => {
    expect(ev.script("a = (1, 'x')\nb = {3, 1, 2}\nc = frozenset([2, 1])\nd = float('nan')\ne = [float('inf')]", {}).assigned).toEqual({
      a: [1, 'x'],
      b: [1, 2, 3],
      c: [1, 2],
      d: null,
      e: [null],
    });
  });

  it('drops names bound to functions, classes, modules and other non-JSON values', () => {
    expect(ev.script("import re\nf = len\nk = int\nb = b'bytes'\nm = re\np = re.compile('x')\nkept = 1", {}).assigned).toEqual({ kept: 1 });
  });

  it('a non-JSON value inside a value is script_result', () => {
    const e = failure(() => ev.script('x = [len]', {}));
    expect(e.code).toBe('script_result');
    expect(failure(() => ev.expression('len', {})).code).toBe('script_result');
  });

  it('a dict with a key that is not a string is script_result', () => {
    const e = failure(() => ev.script("x = {1: 'a'}", {}));
    expect(e.code).toBe('script_result');
    expect(e.message).toMatch(/key that is not a string/);
    expect(failure(() => ev.expression("{'a': {(1, 2): 3}}", {})).code).toBe('script_result');
  });

  it('a cycle, a NUL character or an unpaired surrogate is script_result', () => {
    expect(failure(() => ev.script('a = []\na.append(a)', {})).code).toBe('script_result');
    expect(failure(() => ev.script("s = 'a\\x00b'", {})).code).toBe('script_result');
    expect(failure(() => ev.script("s = '\\ud800'", {})).code).toBe('script_result');
  });

  it('strings round-trip, including astral characters and escapes', () => {
    const s = 'é ☃ 😀 "q" \\ \n';
    expect(ev.script('t = s + s', { s }).assigned).toEqual({ t: s + s });
  });
});

describe('errors', () => {
  it('a Python exception is script_error with its type, message and line', () => {
    const e = failure(() => ev.script('x = rate * 2', {}));
    expect(e.code).toBe('script_error');
    expect(e.message).toBe("NameError: name 'rate' is not defined");
    expect(e.line).toBe(1);
    const e2 = failure(() => ev.script('a = 1\nb = 2\n\nc = {}["missing"]', {}));
    expect(e2.message).toBe("KeyError: 'missing'");
    expect(e2.line).toBe(4);
  });

  it('the line of an error inside a function is the line that raised', () => {
    const e = failure(() => ev.script('def f(x):\n    return 1 / x\n\ny = f(0)', {}));
    expect(e.message).toBe('ZeroDivisionError: division by zero');
    expect(e.line).toBe(2);
  });

  it('raise with a message', () => {
    const e = failure(() => ev.script("if amount > 10:\n    raise ValueError('too much')", { amount: 11 }));
    expect(e.message).toBe('ValueError: too much');
    expect(e.line).toBe(2);
  });

  it('a syntax error is syntax_error with line and column', () => {
    const e = failure(() => ev.script('x = 1\ny = (\n', {}));
    expect(e.code).toBe('syntax_error');
    expect(e.message).toMatch(/^SyntaxError: /);
    expect(e.line).toBe(2);
    const e2 = failure(() => ev.script('x = 1\n  y = 2', {}));
    expect(e2.code).toBe('syntax_error');
    expect(e2.message).toMatch(/^IndentationError: /);
    expect(e2.line).toBe(2);
    expect(failure(() => ev.condition('amount >', {})).code).toBe('syntax_error');
  });

  it('an import outside the allow-list is script_error', () => {
    const e = failure(() => ev.script('import os', {}));
    expect(e.code).toBe('script_error');
    expect(e.message).toBe("ImportError: import of 'os' is not allowed");
  });
});

describe('limits', () => {
  it('an endless loop is script_timeout, and the next evaluation works', () => {
    const started = performance.now();
    expect(failure(() => ev.script('while True:\n    pass', {})).code).toBe('script_timeout');
    expect(performance.now() - started).toBeLessThan(3000);
    expect(ev.expression('1 + 1', {})).toBe(2);
  });

  it('a script that grows past the memory limit is script_memory, and the next evaluation works', () => {
    expect(failure(() => ev.script('x = [0] * (10 ** 9)', {})).code).toBe('script_memory');
    expect(failure(() => ev.script("x = []\nwhile True:\n    x.append('a' * 10000)", {})).code).toBe('script_memory');
    expect(ev.script('y = [0] * 1000\nn = len(y)', {}).assigned).toEqual({ y: new Array(1000).fill(0), n: 1000 });
  });

  it('endless recursion is script_error RecursionError with a line', () => {
    const e = failure(() => ev.script('def f(n):\n    return f(n + 1)\n\nf(0)', {}));
    expect(e.code).toBe('script_error');
    expect(e.message).toMatch(/^RecursionError: maximum recursion depth exceeded/);
    expect(e.line).toBe(2);
    expect(ev.script('def g(n):\n    return 0 if n == 0 else g(n - 1) + 1\nd = g(500)', {}).assigned).toEqual({ d: 500 });
  });

  it('a huge integer power is interrupted too', () => {
    expect(failure(() => ev.script('x = 10 ** (10 ** 8)', {})).code).toBe('script_timeout');
    expect(ev.expression('3 + 3', {})).toBe(6);
  });

  it('a loop that swallows every KeyboardInterrupt is killed: script_timeout, then a new process', () => {
    const pid = ev.sandboxPid();
    const started = performance.now();
    const source = 'n = 0\nwhile True:\n    try:\n        while True:\n            n += 1\n    except BaseException:\n        pass';
    expect(failure(() => ev.script(source, {})).code).toBe('script_timeout');
    expect(performance.now() - started).toBeLessThan(8000);
    expect(ev.expression('2 + 2', {})).toBe(4);
    expect(ev.sandboxPid()).not.toBe(pid);
  }, 60_000);

  it('a condition whose truth test loops is script_timeout', () => {
    const source = 'class C:\n    def __bool__(self):\n        while True:\n            pass\nr = bool(C())';
    expect(failure(() => ev.script(source, {})).code).toBe('script_timeout');
  });

});

describe('closing', () => {
  it('a closed evaluator throws evaluator_closed', () => {
    const other = createPythonEvaluator();
    other.close();
    other.close();
    expect(failure(() => other.condition('True', {})).code).toBe('evaluator_closed');
    expect(other.sandboxPid()).toBeUndefined();
  });
});
