/**
 * Hostile Python for the Python evaluator (src/expressions/python), in the
 * spirit of test/security/sandbox.test.ts: each attempt to reach the host
 * (JavaScript through Pyodide's `js`/`pyodide_js`, the emscripten file
 * system, the real builtins and modules) or to leave something behind for
 * the next evaluation must fail safely, as an ExpressionError with a stable
 * code or a harmless JSON result. After every case the sandbox process is
 * the same one (nothing crashed it) and a probe evaluation sees clean
 * globals.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json, JsonObject } from '../../src/errors.js';
import { ExpressionError } from '../../src/expressions/index.js';
import { createPythonEvaluator, type PythonEvaluator } from '../../src/expressions/python/index.js';

type Kind = 'script' | 'condition' | 'expression';
type Expected = { code: string; message?: RegExp } | { result: Json | boolean };

interface Case {
  name: string;
  kind: Kind;
  source: string;
  variables?: JsonObject;
  expected: Expected;
}

const refused = (message?: RegExp): Expected => ({ code: 'syntax_error', ...(message ? { message } : {}) });
const notAllowed = (module: string): Expected => ({ code: 'script_error', message: new RegExp(`^ImportError: import of '${module.replace('.', '\\.')}' is not allowed`) });
const undefinedName = (name: string): Expected => ({ code: 'script_error', message: new RegExp(`^NameError: name '${name}' is not defined`) });

const CASES: Case[] = [
  // ---- reaching JavaScript through Pyodide ---------------------------------
  { name: '`import js`', kind: 'script', source: 'import js', expected: notAllowed('js') },
  { name: '`from js import process`', kind: 'script', source: 'from js import process', expected: notAllowed('js') },
  { name: '`import pyodide`', kind: 'script', source: 'import pyodide', expected: notAllowed('pyodide') },
  { name: '`import pyodide_js`', kind: 'script', source: 'import pyodide_js', expected: notAllowed('pyodide_js') },
  { name: '`import pyodide.ffi`', kind: 'script', source: 'import pyodide.ffi', expected: notAllowed('pyodide.ffi') },
  { name: '`from pyodide.ffi import to_js`', kind: 'script', source: 'from pyodide.ffi import to_js', expected: notAllowed('pyodide.ffi') },
  { name: '`import _pyodide`', kind: 'script', source: 'import _pyodide', expected: notAllowed('_pyodide') },
  { name: '`import pyodide.http` (network)', kind: 'script', source: 'import pyodide.http', expected: notAllowed('pyodide.http') },
  { name: '`import micropip`', kind: 'script', source: 'import micropip', expected: notAllowed('micropip') },
  // ---- the operating system, files, processes, network ---------------------
  { name: '`import os`', kind: 'script', source: 'import os', expected: notAllowed('os') },
  { name: '`import subprocess`', kind: 'script', source: 'import subprocess', expected: notAllowed('subprocess') },
  { name: '`import socket`', kind: 'script', source: 'import socket', expected: notAllowed('socket') },
  { name: '`import ctypes`', kind: 'script', source: 'import ctypes', expected: notAllowed('ctypes') },
  { name: '`import sys`', kind: 'script', source: 'import sys', expected: notAllowed('sys') },
  { name: '`import importlib`', kind: 'script', source: 'import importlib', expected: notAllowed('importlib') },
  { name: '`import builtins`', kind: 'script', source: 'import builtins', expected: notAllowed('builtins') },
  { name: '`import gc` (get_objects walks)', kind: 'script', source: 'import gc', expected: notAllowed('gc') },
  { name: '`import inspect`', kind: 'script', source: 'import inspect', expected: notAllowed('inspect') },
  { name: '`import io`', kind: 'script', source: 'import io', expected: notAllowed('io') },
  { name: '`import pickle`', kind: 'script', source: 'import pickle', expected: notAllowed('pickle') },
  { name: '`import posix`', kind: 'script', source: 'import posix', expected: notAllowed('posix') },
  { name: '`import pathlib`', kind: 'script', source: 'import pathlib', expected: notAllowed('pathlib') },
  { name: '`import urllib.request`', kind: 'script', source: 'import urllib.request', expected: notAllowed('urllib.request') },
  { name: 'a relative import', kind: 'script', source: 'from . import x', expected: refused(/relative imports/) },
  { name: '`from json import *`', kind: 'script', source: 'from json import *', expected: refused(/import \*/) },
  { name: '`from json import _default_encoder`', kind: 'script', source: 'from json import _default_encoder', expected: refused() },
  { name: '`open()`', kind: 'expression', source: "open('/etc/passwd').read()", expected: undefinedName('open') },
  { name: '`__import__("os")`', kind: 'expression', source: "__import__('os')", expected: refused(/'__import__'/) },
  // ---- the real builtins ----------------------------------------------------
  { name: '`__builtins__` by name', kind: 'expression', source: '__builtins__', expected: refused(/'__builtins__'/) },
  { name: '`del __builtins__` (CPython then falls back to the real builtins)', kind: 'script', source: 'del __builtins__\nimport os', expected: refused() },
  { name: '`__builtins__ = {}`', kind: 'script', source: '__builtins__ = {}', expected: refused() },
  { name: '`global __builtins__` in a function', kind: 'script', source: 'def f():\n    global __builtins__\n    del __builtins__\nf()', expected: refused() },
  { name: 'a function named `__builtins__`', kind: 'script', source: 'def __builtins__():\n    pass', expected: refused() },
  { name: '`eval`', kind: 'expression', source: "eval('1')", expected: undefinedName('eval') },
  { name: '`exec`', kind: 'script', source: "exec('import os')", expected: undefinedName('exec') },
  { name: '`compile`', kind: 'expression', source: "compile('1', 'x', 'eval')", expected: undefinedName('compile') },
  { name: '`globals()`', kind: 'expression', source: 'globals()', expected: undefinedName('globals') },
  { name: '`locals()`', kind: 'expression', source: 'locals()', expected: undefinedName('locals') },
  { name: '`vars()`', kind: 'expression', source: 'vars()', expected: undefinedName('vars') },
  { name: '`dir()`', kind: 'expression', source: 'dir()', expected: undefinedName('dir') },
  { name: '`type(x)` (classes of offered objects)', kind: 'expression', source: 'type(json)', expected: undefinedName('type') },
  { name: '`setattr`', kind: 'script', source: "setattr(json, 'loads', None)", expected: undefinedName('setattr') },
  { name: '`input()` (would read the protocol)', kind: 'expression', source: 'input()', expected: undefinedName('input') },
  { name: '`breakpoint()`', kind: 'expression', source: 'breakpoint()', expected: undefinedName('breakpoint') },
  { name: '`exit()`', kind: 'expression', source: 'exit()', expected: undefinedName('exit') },
  // ---- object graph walks ---------------------------------------------------
  { name: '`().__class__.__base__.__subclasses__()`', kind: 'expression', source: '().__class__.__base__.__subclasses__()', expected: refused(/'__subclasses__'|'__class__'|'__base__'/) },
  { name: '`object.__subclasses__()`', kind: 'expression', source: 'object.__subclasses__()', expected: refused() },
  { name: '`getattr((), "__class__")`', kind: 'expression', source: "getattr((), '__class__')", expected: { code: 'script_error', message: /^AttributeError: access to attribute '__class__' is not allowed/ } },
  { name: '`getattr(g, "gi_frame")`', kind: 'expression', source: "getattr((i for i in ()), 'gi_frame')", expected: { code: 'script_error', message: /^AttributeError/ } },
  { name: '`hasattr` of a dunder says no', kind: 'expression', source: "hasattr((), '__class__')", expected: { result: false } },
  { name: 'a function\'s `__globals__`', kind: 'expression', source: 'json.loads.__globals__', expected: refused() },
  { name: 'a lambda\'s `__code__`', kind: 'expression', source: '(lambda: 0).__code__', expected: refused() },
  { name: 'a generator\'s frame: `gi_frame.f_back.f_globals`', kind: 'expression', source: '(i for i in ()).gi_frame.f_back.f_globals', expected: refused(/'gi_frame'|'f_globals'|'f_back'/) },
  { name: 'a traceback\'s frames', kind: 'script', source: 'try:\n    1 / 0\nexcept Exception as e:\n    tb = e.__traceback__', expected: refused() },
  { name: '`tb_frame` of a traceback', kind: 'script', source: 'try:\n    1 / 0\nexcept Exception as e:\n    f = e.with_traceback(None).tb_frame', expected: refused() },
  { name: '`match` class pattern binding `__class__`', kind: 'script', source: 'match ():\n    case object(__class__=c):\n        pass', expected: refused() },
  { name: '`int.mro()`', kind: 'expression', source: 'int.mro()', expected: refused() },
  { name: '`str.format` reaching attributes gives text only', kind: 'expression', source: "'{0.__class__}'.format(())", expected: { result: "<class 'tuple'>" } },
  { name: '`format_map`', kind: 'expression', source: "'{x}'.format_map({'x': 1})", expected: refused() },
  { name: 'an f-string reading a dunder', kind: 'expression', source: "f'{json.__dict__}'", expected: refused() },
  { name: 'an identifier that folds to a dunder (NFKC)', kind: 'expression', source: '\uff3f\uff3fbuiltins\uff3f\uff3f', expected: refused() },
  // ---- modules offered are read-only namespaces ----------------------------
  { name: '`json.decoder` (a submodule)', kind: 'expression', source: 'json.decoder', expected: { code: 'script_error', message: /has no attribute 'decoder'/ } },
  { name: '`uuid.os`', kind: 'expression', source: 'uuid.os', expected: { code: 'script_error', message: /has no attribute 'os'/ } },
  { name: '`random._os`', kind: 'expression', source: 'random._os', expected: refused() },
  { name: '`re.sys`', kind: 'expression', source: 're.sys', expected: { code: 'script_error', message: /has no attribute 'sys'/ } },
  { name: '`json.loads = None` (attribute write)', kind: 'script', source: 'json.loads = None', expected: { code: 'script_error', message: /only objects of a class the script defines/ } },
  { name: '`del json.loads`', kind: 'script', source: 'del json.loads', expected: { code: 'script_error', message: /only objects of a class the script defines/ } },
  { name: 'an attribute of an offered function (`json.dumps.x = 1`)', kind: 'script', source: 'json.dumps.x = 1', expected: { code: 'script_error', message: /only objects of a class the script defines/ } },
  { name: 'an attribute of an offered class (`uuid.UUID.hex = 1`)', kind: 'script', source: 'uuid.UUID.hex = 1', expected: { code: 'script_error', message: /only objects of a class the script defines/ } },
  { name: 'an attribute of an offered builtin (`getattr.x = 1`)', kind: 'script', source: 'getattr.x = 1', expected: { code: 'script_error', message: /only objects of a class the script defines/ } },
  { name: 'an attribute write hidden in a for target', kind: 'script', source: 'for json.x in [1]:\n    pass', expected: { code: 'script_error', message: /only objects of a class the script defines/ } },
  { name: 'a class of the script made to look like an offered one', kind: 'script', source: 'class C(ValueError):\n    pass\nValueError.x = 1', expected: { code: 'script_error', message: /only objects of a class the script defines/ } },
  { name: '`decimal.getcontext().prec = 2`', kind: 'script', source: 'decimal.getcontext().prec = 2', expected: { code: 'script_error', message: /only objects of a class the script defines/ } },
  { name: 'a dunder attribute of the script\'s own object', kind: 'script', source: 'class C:\n    pass\nC().__class__ = int', expected: refused() },
  // ---- deep recursion in C (would overflow the JavaScript stack: a Pyodide fatal error) ----
  { name: '50,000 nested `not`', kind: 'expression', source: `${'not '.repeat(50_000)}True`, expected: { code: 'syntax_error' } },
  { name: 'a 200,000-deep list built in a loop', kind: 'script', source: 'a = []\nfor i in range(200000):\n    a = [a]', expected: { code: 'script_error', message: /^RecursionError/ } },
  { name: '`__repr__` calling `repr(self)`', kind: 'script', source: 'class A:\n    def __repr__(self):\n        return repr(self)\nr = repr(A())', expected: { code: 'script_error', message: /^RecursionError/ } },
  { name: 'a 1 GB padded format', kind: 'expression', source: "'{:>1000000000}'.format(1)", expected: { code: 'script_memory' } },
  // ---- leaving something behind ---------------------------------------------
  { name: 'a trap in the decimal context', kind: 'script', source: 'decimal.getcontext().traps[decimal.Inexact] = True', expected: { result: {} } },
  { name: 'seeding random', kind: 'script', source: 'random.seed(1)\nfirst = random.random()', expected: { result: { first: 0.13436424411240122 } } },
  { name: 'a global named like a builtin', kind: 'script', source: 'len = 5', expected: { result: { len: 5 } } },
];

let ev: PythonEvaluator;
let pid: number | undefined;

beforeAll(() => {
  ev = createPythonEvaluator({ timeoutMs: 1000, hardTimeoutMs: 4000, memoryLimitMb: 128, fastPath: false });
  ev.condition('True', {});
  pid = ev.sandboxPid();
}, 60_000);

afterAll(() => {
  ev?.close();
});

function run(c: Case): unknown {
  const variables = c.variables ?? {};
  if (c.kind === 'condition') return ev.condition(c.source, variables);
  if (c.kind === 'expression') return ev.expression(c.source, variables);
  return ev.script(c.source, variables).assigned;
}

describe('escape catalogue', () => {
  for (const c of CASES) {
    it(c.name, () => {
      let outcome: { result: unknown } | { error: unknown };
      try {
        outcome = { result: run(c) };
      } catch (e) {
        outcome = { error: e };
      }
      if ('code' in c.expected) {
        expect(outcome).toHaveProperty('error');
        const e = (outcome as { error: unknown }).error;
        expect(e).toBeInstanceOf(ExpressionError);
        expect((e as ExpressionError).code).toBe(c.expected.code);
        if (c.expected.message) expect((e as ExpressionError).message).toMatch(c.expected.message);
      } else {
        expect(outcome).toEqual({ result: c.expected.result });
      }
      // The same process, and a clean next evaluation.
      expect(ev.sandboxPid()).toBe(pid);
      expect(ev.script('probe = (len([1, 2]), json.loads("[1]"), str(Decimal(1) / Decimal(3))[:4])', {}).assigned).toEqual({ probe: [2, [1], '0.33'] });
    });
  }

  it('nothing of one evaluation reaches the next: random, decimal, builtins, names', () => {
    ev.script('random.seed(1)\nlen = None\nleft = 1\ndecimal.getcontext().traps[decimal.Inexact] = True', {});
    const r = ev.script('a = random.random()\nb = len([1])\nc = str(Decimal(1) / Decimal(3))[:4]', {}).assigned;
    expect(r.a).not.toBe(0.13436424411240122);
    expect(r).toMatchObject({ b: 1, c: '0.33' });
    expect(() => ev.expression('left', {})).toThrow(/NameError/);
  });

  it('the sandbox process runs with an empty environment', () => {
    const environ = ev.expression('time.tzname', {});
    expect(Array.isArray(environ)).toBe(true);
    // the only door to the environment would be os, which is refused
    expect(() => ev.script('import os\ne = dict(os.environ)', {})).toThrow(/not allowed/);
  });

  it('classes of the script may define special methods, and still read no dunders', () => {
    expect(ev.script('class P:\n    def __init__(self):\n        pass\n    def __repr__(self):\n        return "P"\nr = repr(P())', {}).assigned).toEqual({ r: 'P' });
    expect(() => ev.script('class P:\n    def f(self):\n        return self.__class__\nP().f()', {})).toThrow(/not allowed/);
  });

  it('objects of a class the script defines can be changed, in every form of assignment', () => {
    const source = [
      'class P:',
      '    kind = "p"',
      '    def __init__(self, n):',
      '        self.n = n',
      'class Q(P):',
      '    pass',
      'p = P(1)',
      'p.n += 1',
      'p.extra = 5',
      'del p.extra',
      'for p.i in range(3):',
      '    pass',
      'q = Q(10)',
      'q.n, q.m = 20, 30',
      'P.kind = "changed"',
      'r = [p.n, p.i, hasattr(p, "extra"), q.n, q.m, Q.kind]',
    ].join('\n');
    expect(ev.script(source, {}).assigned).toEqual({ r: [2, 2, false, 20, 30, 'changed'] });
    // and the next evaluation has none of it
    expect(() => ev.expression('P', {})).toThrow(/NameError/);
  });

  it('a refused attribute write carries its line', () => {
    try {
      ev.script('x = 1\njson.loads = None', {});
      expect.unreachable();
    } catch (e) {
      expect((e as ExpressionError).line).toBe(2);
    }
  });
});
