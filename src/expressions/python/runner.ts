/**
 * The Python half of the Python sandbox process (see python/index.ts): run
 * once by child.ts after Pyodide has loaded, in a namespace of its own. It
 * defines `baton_run(kind, source, eager, *pairs)`, which child.ts calls for
 * each request and which returns the reply string (protocol.ts's `T`, `F`,
 * `R<json>`, `S<json>`, `E<json>`).
 *
 * Plain Python in a string, like bootstrap.ts: it must be the same text
 * whether this module runs as TypeScript or compiled.
 */
export const RUNNER_SOURCE = String.raw`
import ast as _ast
import collections as _collections
import json as _json
import math as _math
import re as _re
import sys as _sys
import os as _os
import datetime as _datetime
import time as _time
import decimal as _decimal
import random as _random
import uuid as _uuid
import calendar as _calendar
import string as _string

_os.environ.clear()
_sys.setrecursionlimit(@RECURSION_LIMIT@)
_FILE = '<script>'

# ---------------------------------------------------------------------------
# What a script is offered: read-only namespaces instead of the real modules
# (a real module leads to others: uuid.os, json.decoder, random._os, ...).

def _namespace(name, attrs):
    attrs = dict(attrs)
    class module:
        __slots__ = ()
        def __getattr__(self, key):
            try:
                return attrs[key]
            except KeyError:
                raise AttributeError("module '%s' has no attribute '%s'" % (name, key)) from None
        def __setattr__(self, key, value):
            raise AttributeError("module '%s' is read-only" % name)
        def __delattr__(self, key):
            raise AttributeError("module '%s' is read-only" % name)
        def __repr__(self):
            return "<module '%s'>" % name
        def __dir__(self):
            return sorted(attrs)
    return module()

def _public(mod, names=None):
    if names is None:
        names = [n for n in dir(mod) if not n.startswith('_')]
    out = {}
    for n in names:
        v = getattr(mod, n)
        if type(v) is type(_sys):
            continue
        out[n] = v
    return out

_DATETIME_NS = _namespace('datetime', _public(_datetime, ['date', 'datetime', 'time', 'timedelta', 'timezone', 'tzinfo', 'MINYEAR', 'MAXYEAR', 'UTC']))
def _sleep(seconds):
    # SpiffArena offers the real time module, so time.sleep works there.
    # Pyodide's own sleep is a busy wait in C that the watchdog's interrupt
    # cannot reach (time.sleep(60) would run until the host kills the
    # process); this one sleeps in slices of 10 ms and returns to the
    # interpreter loop between them, so a sleep past the time limit is
    # script_timeout like any loop.
    if not isinstance(seconds, (int, float)):
        raise TypeError("'%s' object cannot be interpreted as an integer or float" % type(seconds).__name__)
    s = float(seconds)
    if s != s:
        raise ValueError('Invalid value NaN (not a number)')
    if s < 0:
        raise ValueError('sleep length must be non-negative')
    if s > 9.2e9:
        raise OverflowError('sleep length is too large')
    end = _time.monotonic() + s
    while True:
        left = end - _time.monotonic()
        if left <= 0:
            return None
        _time.sleep(left if left < 0.01 else 0.01)

_TIME_NS = _namespace('time', dict(_public(_time, [n for n in ['time', 'time_ns', 'monotonic', 'perf_counter', 'gmtime', 'localtime', 'mktime', 'strftime', 'strptime', 'asctime', 'ctime', 'struct_time', 'timezone', 'altzone', 'daylight', 'tzname'] if hasattr(_time, n)]), sleep=_sleep))
_DECIMAL_NAMES = ['Decimal', 'Context', 'localcontext', 'getcontext', 'ROUND_UP', 'ROUND_DOWN', 'ROUND_CEILING', 'ROUND_FLOOR', 'ROUND_HALF_UP', 'ROUND_HALF_DOWN', 'ROUND_HALF_EVEN', 'ROUND_05UP', 'InvalidOperation', 'DivisionByZero', 'Inexact', 'Rounded', 'DecimalException']
_DECIMAL_NS = _namespace('decimal', _public(_decimal, _DECIMAL_NAMES))
_JSON_NS = _namespace('json', _public(_json, ['dumps', 'loads', 'JSONDecodeError']))
_RE_NS = _namespace('re', _public(_re, ['compile', 'search', 'match', 'fullmatch', 'split', 'findall', 'finditer', 'sub', 'subn', 'escape', 'error', 'Pattern', 'Match', 'A', 'ASCII', 'I', 'IGNORECASE', 'M', 'MULTILINE', 'S', 'DOTALL', 'X', 'VERBOSE']))
_UUID_NS = _namespace('uuid', _public(_uuid, ['UUID', 'uuid1', 'uuid3', 'uuid4', 'uuid5', 'NAMESPACE_DNS', 'NAMESPACE_URL', 'NAMESPACE_OID', 'NAMESPACE_X500']))
_CALENDAR_NS = _namespace('calendar', _public(_calendar, ['isleap', 'leapdays', 'monthrange', 'monthcalendar', 'weekday', 'timegm', 'month_name', 'month_abbr', 'day_name', 'day_abbr', 'MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY', 'SATURDAY', 'SUNDAY']))
_MATH_NS = _namespace('math', _public(_math))
_RANDOM_NAMES = ['random', 'randint', 'randrange', 'choice', 'choices', 'shuffle', 'sample', 'uniform', 'gauss', 'seed', 'getrandbits', 'triangular', 'normalvariate', 'expovariate']

def _random_ns():
    # A generator of its own per evaluation: random.seed() in one script
    # must not decide the numbers of the next.
    r = _random.Random()
    return _namespace('random', {n: getattr(r, n) for n in _RANDOM_NAMES})

_MODULES = {
    'datetime': lambda: _DATETIME_NS, 'time': lambda: _TIME_NS, 'decimal': lambda: _DECIMAL_NS,
    'json': lambda: _JSON_NS, 're': lambda: _RE_NS, 'uuid': lambda: _UUID_NS,
    'calendar': lambda: _CALENDAR_NS, 'math': lambda: _MATH_NS, 'random': _random_ns,
}

def _import(name, globals=None, locals=None, fromlist=(), level=0):
    if level != 0 or name not in _MODULES:
        raise ImportError("import of '%s' is not allowed" % name)
    return _MODULES[name]()

def _silent_print(*args, **kwargs):
    return None

def _safe_getattr(obj, name, *default):
    if not isinstance(name, str) or name.startswith('_') or name in _INSPECT:
        raise AttributeError("access to attribute '%s' is not allowed" % (name,))
    return getattr(obj, name, *default)

def _safe_hasattr(obj, name):
    if not isinstance(name, str) or name.startswith('_') or name in _INSPECT:
        return False
    return hasattr(obj, name)

import builtins as _b
_BUILTIN_NAMES = [
    'abs', 'all', 'any', 'ascii', 'bin', 'bool', 'bytes', 'callable', 'chr', 'complex', 'dict',
    'divmod', 'enumerate', 'filter', 'float', 'format', 'frozenset', 'hash', 'hex', 'id', 'int',
    'isinstance', 'issubclass', 'iter', 'len', 'list', 'map', 'max', 'min', 'next', 'object', 'oct',
    'ord', 'pow', 'range', 'repr', 'reversed', 'round', 'set', 'slice', 'sorted', 'str', 'sum',
    'tuple', 'zip', 'property', 'staticmethod', 'classmethod', 'super',
    'True', 'False', 'None', 'Ellipsis', 'NotImplemented', '__build_class__',
]
_BUILTINS = {n: getattr(_b, n) for n in _BUILTIN_NAMES}
for _n in dir(_b):
    _v = getattr(_b, _n)
    if isinstance(_v, type) and issubclass(_v, BaseException):
        _BUILTINS[_n] = _v
_BUILTINS.update({
    '__import__': _import, 'print': _silent_print, 'getattr': _safe_getattr, 'hasattr': _safe_hasattr,
    # A class body reads __name__ for its __module__.
    '__name__': '__script__',
})

def sanitize_for_md(value):
    # SpiffArena's JinjaHelpers.sanitize_for_md (spiff_arena_common/jinja.py),
    # which its script engine offers as a global: a backslash before each
    # markdown character, line breaks removed.
    escape_chars = '_*[]()~' + chr(96) + '#+-=|{}!'
    escaped_value = _re.sub('([%s])' % _re.escape(escape_chars), r'\\\1', value)
    return escaped_value.replace('\n', '').replace('\r', '')

# SpiffArena's script globals (process_instance_script_engine.py's
# default_globals, plus date and Decimal): in the evaluation's globals dict
# itself, not in its builtins, because SpiffWorkflow merges them into the
# task data dict the script runs in. So a script may \`del time\` (SpiffArena's
# sample models do, to keep the module out of the task data) or rebind one
# (\`date = '2024-01-01'\`, reported like any variable); a variable of that
# name hides it. Left as they were, they are not reported.
_GLOBALS = {
    'datetime': _datetime.datetime, 'timedelta': _datetime.timedelta, 'date': _datetime.date,
    'time': _TIME_NS, 'decimal': _DECIMAL_NS, 'json': _JSON_NS, 're': _RE_NS, 'uuid': _UUID_NS,
    'calendar': _CALENDAR_NS, 'Decimal': _decimal.Decimal, 'sanitize_for_md': sanitize_for_md,
}
# Globals built fresh for each evaluation that mentions them.
_FRESH = {'random': _random_ns}
_NOTHING = object()

# ---------------------------------------------------------------------------
# What a script may say: checked on the syntax tree before it is compiled.

_INSPECT = frozenset([
    'gi_frame', 'gi_code', 'gi_yieldfrom', 'gi_suspended', 'cr_await', 'cr_frame', 'cr_code',
    'cr_origin', 'cr_suspended', 'ag_await', 'ag_code', 'ag_frame', 'ag_running', 'tb_frame',
    'tb_lasti', 'tb_lineno', 'tb_next', 'f_back', 'f_builtins', 'f_code', 'f_globals', 'f_lasti',
    'f_lineno', 'f_locals', 'f_trace', 'co_code', 'mro', 'format_map',
])

class _Refused(Exception):
    def __init__(self, message, node):
        Exception.__init__(self, message)
        self.lineno = getattr(node, 'lineno', None)
        self.col = getattr(node, 'col_offset', None)

def _check_name(name, node, what):
    if name is not None and name.startswith('__'):
        raise _Refused("%s '%s' is not allowed (names starting with '__' are reserved)" % (what, name), node)

# Special methods a class of the script may define (defining is harmless,
# reading them is what gives access).
_METHODS = frozenset([
    '__init__', '__repr__', '__str__', '__eq__', '__ne__', '__lt__', '__le__', '__gt__', '__ge__',
    '__hash__', '__len__', '__iter__', '__next__', '__contains__', '__getitem__', '__call__',
    '__add__', '__sub__', '__mul__', '__truediv__', '__floordiv__', '__mod__', '__neg__', '__bool__',
    '__enter__', '__exit__',
])

def _check(tree):
    methods = set()
    for node in _ast.walk(tree):
        if type(node) is _ast.ClassDef:
            for item in node.body:
                if type(item) is _ast.FunctionDef and item.name in _METHODS:
                    methods.add(id(item))
    for node in _ast.walk(tree):
        t = type(node)
        if t is _ast.FunctionDef and id(node) in methods:
            continue
        if t is _ast.Attribute:
            if node.attr.startswith('_') or node.attr in _INSPECT:
                raise _Refused("access to attribute '%s' is not allowed" % node.attr, node)
        elif t is _ast.Name:
            _check_name(node.id, node, 'the name')
        elif t in (_ast.FunctionDef, _ast.AsyncFunctionDef, _ast.ClassDef):
            _check_name(node.name, node, 'the name')
        elif t is _ast.arg:
            _check_name(node.arg, node, 'the argument')
        elif t is _ast.alias:
            _check_name(node.asname, node, 'the name')
            if node.name == '*':
                raise _Refused("'import *' is not allowed", node)
        elif t is _ast.ImportFrom:
            if node.level:
                raise _Refused('relative imports are not allowed', node)
            for a in node.names:
                if a.name.startswith('_'):
                    raise _Refused("import of '%s' is not allowed" % a.name, node)
        elif t is _ast.MatchClass:
            for k in node.kwd_attrs:
                if k.startswith('_') or k in _INSPECT:
                    raise _Refused("access to attribute '%s' is not allowed" % k, node)
        elif t in (_ast.MatchAs, _ast.MatchStar):
            _check_name(node.name, node, 'the name')
        elif t is _ast.MatchMapping:
            _check_name(node.rest, node, 'the name')
        elif t in (_ast.Global, _ast.Nonlocal):
            for n in node.names:
                _check_name(n, node, 'the name')
        elif t is _ast.ExceptHandler:
            _check_name(node.name, node, 'the name')

# Attribute writes (\`a.x = v\`, \`a.x += 1\`, \`del a.x\`, \`for a.x in ...\`) go
# through a guard: the target is rewritten to \`__baton_write__(a)['x']\`,
# which sets the attribute only on a class the script defined in this
# evaluation or an instance of one. Everything else a script can reach
# (functions of the offered modules, their classes) is shared by all
# evaluations, and a write there would reach the next one.

class _Rewrite(_ast.NodeTransformer):
    def __init__(self):
        self.writes = False
    def visit_Attribute(self, node):
        self.generic_visit(node)
        if isinstance(node.ctx, _ast.Load):
            return node
        self.writes = True
        call = _ast.Call(func=_ast.Name(id='__baton_write__', ctx=_ast.Load()), args=[node.value], keywords=[])
        sub = _ast.Subscript(value=call, slice=_ast.Constant(value=node.attr), ctx=node.ctx)
        _ast.copy_location(call, node)
        _ast.copy_location(call.func, node)
        _ast.copy_location(sub.slice, node)
        return _ast.copy_location(sub, node)

class _Writer:
    __slots__ = ('obj', 'created')
    def __init__(self, obj, created):
        self.obj = obj
        self.created = created
    def _check(self, name):
        obj = self.obj
        for c in self.created:
            if obj is c:
                return
        for c in type(obj).__mro__:
            for d in self.created:
                if c is d:
                    return
        raise AttributeError("cannot set attribute '%s' of %s: only objects of a class the script defines can be changed" % (name, type(obj).__name__))
    def __getitem__(self, name):
        return getattr(self.obj, name)
    def __setitem__(self, name, value):
        self._check(name)
        setattr(self.obj, name, value)
    def __delitem__(self, name):
        self._check(name)
        delattr(self.obj, name)

_real_build_class = _b.__build_class__

def _class_tools():
    created = []
    def build_class(*args, **kwargs):
        cls = _real_build_class(*args, **kwargs)
        created.append(cls)
        return cls
    def write(obj):
        return _Writer(obj, created)
    return build_class, write

# ---------------------------------------------------------------------------
# Compiling, once per (kind, source).

_CACHE = _collections.OrderedDict()
_CACHE_SIZE = @CACHE_SIZE@

class _Failure(Exception):
    def __init__(self, code, message, line=None, column=None):
        Exception.__init__(self, message)
        self.code = code
        self.message = message
        self.line = line
        self.column = column

def _compile(kind, source):
    key = (kind, source)
    hit = _CACHE.get(key)
    if hit is not None:
        _CACHE.move_to_end(key)
        return hit
    mode = 'exec' if kind == 2 else 'eval'
    text = source if kind == 2 else source.strip()
    try:
        tree = _ast.parse(text, _FILE, mode)
        _check(tree)
        rewrite = _Rewrite()
        tree = _ast.fix_missing_locations(rewrite.visit(tree))
        classes = rewrite.writes or any(type(n) is _ast.ClassDef for n in _ast.walk(tree))
        code = compile(tree, _FILE, mode, dont_inherit=True)
    except SyntaxError as e:
        msg = '%s: %s' % (type(e).__name__, e.msg)
        raise _Failure('syntax_error', msg, e.lineno, e.offset)
    except _Refused as e:
        raise _Failure('syntax_error', str(e), e.lineno, None if e.col is None else e.col + 1)
    except (RecursionError, MemoryError) as e:
        raise _Failure('syntax_error', '%s: %s' % (type(e).__name__, e))
    fresh = tuple(n for n in _FRESH if n in source)
    entry = (code, fresh, classes)
    _CACHE[key] = entry
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return entry

# ---------------------------------------------------------------------------
# Values out: JSON, with the conversions documented in python/index.ts.

class _Drop(Exception):
    pass

_BAD_TEXT = _re.compile('[\x00\ud800-\udfff]')
_DT = _datetime.datetime
_DATE = _datetime.date
_TIME_T = _datetime.time
_DEC = _decimal.Decimal

def _text(s, where):
    if _BAD_TEXT.search(s):
        raise _Failure('script_result', '%s contains a NUL character or an unpaired surrogate, which cannot be stored' % where)
    return s

def _decimal_out(d):
    if not d.is_finite():
        return None
    if d == d.to_integral_value():
        i = int(d)
        if abs(i) <= 9007199254740991:
            return i
        return str(d)
    f = float(d)
    if _DEC(repr(f)) == d:
        return f
    return str(d)

def _duration(d):
    # ISO 8601: P1DT2H3M4.5S, -P1D for a negative one (days, hours, minutes, seconds).
    sign = '-' if d < _datetime.timedelta(0) else ''
    d = abs(d)
    hours, rest = divmod(d.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    out = 'P'
    if d.days:
        out += '%dD' % d.days
    secs = '%d' % seconds if not d.microseconds else ('%d.%06d' % (seconds, d.microseconds)).rstrip('0')
    time = ''
    if hours:
        time += '%dH' % hours
    if minutes:
        time += '%dM' % minutes
    if seconds or d.microseconds:
        time += secs + 'S'
    if time:
        out += 'T' + time
    if out == 'P':
        out = 'PT0S'
    return sign + out

def _convert(v, where, seen, top):
    t = type(v)
    if v is None or t is bool or t is str and not _BAD_TEXT.search(v):
        return v
    if t is int:
        return v
    if t is float:
        return v if _math.isfinite(v) else None
    if t is str:
        return _text(v, where)
    if t is list or t is tuple or t is set or t is frozenset or t is dict:
        i = id(v)
        if i in seen:
            raise _Failure('script_result', '%s contains a cycle' % where)
        seen.add(i)
        try:
            if t is dict:
                out = {}
                for k, x in v.items():
                    if type(k) is not str:
                        raise _Failure('script_result', '%s has a key that is not a string (%r): JSON objects have string keys only' % (where, k))
                    out[_text(k, where)] = _convert(x, where, seen, False)
                return out
            items = v
            if t is set or t is frozenset:
                try:
                    items = sorted(v)
                except Exception:
                    items = list(v)
            return [_convert(x, where, seen, False) for x in items]
        finally:
            seen.discard(i)
    if isinstance(v, _DT) or isinstance(v, _DATE) or isinstance(v, _TIME_T):
        return v.isoformat()
    if isinstance(v, _DEC):
        return _decimal_out(v)
    if isinstance(v, bool):
        return bool(v)
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        f = float(v)
        return f if _math.isfinite(f) else None
    if isinstance(v, str):
        return _text(str(v), where)
    if isinstance(v, _datetime.timedelta):
        return _duration(v)
    if isinstance(v, _uuid.UUID):
        return str(v)
    if top:
        raise _Drop()
    raise _Failure('script_result', '%s contains a value that is not JSON (%s)' % (where, type(v).__name__))

# Not ASCII-escaped: the text then matches JSON.stringify for strings, and
# _convert has refused the unpaired surrogates that could not be encoded.
_dumps = _json.JSONEncoder(ensure_ascii=False, separators=(',', ':'), allow_nan=False, check_circular=False).encode
_loads = _json.JSONDecoder().decode

# ---------------------------------------------------------------------------
# Errors: the exception's type, message and line in the user's source.

def _line_of(tb):
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == _FILE:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line

def _message(e):
    try:
        text = str(e)
    except BaseException:
        text = ''
    name = type(e).__name__
    return '%s: %s' % (name, text) if text else name

def _failure_reply(code, message, line=None, column=None):
    d = {'code': code, 'message': message[:2000]}
    if line is not None:
        d['line'] = line
        if column is not None:
            d['column'] = column
    return 'E' + _json.dumps(d)

# ---------------------------------------------------------------------------

def baton_run(kind, source, eager, *pairs):
    try:
        return _run(kind, source, eager, pairs)
    except _Failure as f:
        return _failure_reply(f.code, f.message, f.line, f.column)
    except MemoryError:
        return _failure_reply('script_memory', 'MemoryError: the script exceeded the memory limit')
    except RecursionError as e:
        return _failure_reply('script_error', _message(e))
    except KeyboardInterrupt:
        return _failure_reply('script_timeout', 'the script ran longer than its time limit')
    except BaseException as e:
        return _failure_reply('script_error', 'the Python sandbox failed: ' + _message(e))

def _run(kind, source, eager, pairs):
    code, fresh, classes = _compile(kind, source)
    inputs = _loads(eager) if eager != '{}' else {}
    texts = {}
    for i in range(0, len(pairs) - 1, 2):
        name = pairs[i]
        text = pairs[i + 1]
        texts[name] = text
        inputs[name] = _loads(text)
    scope = dict(_GLOBALS)
    offered = _GLOBALS
    if fresh:
        offered = dict(_GLOBALS)
        for n in fresh:
            offered[n] = scope[n] = _FRESH[n]()
    scope.update(inputs)
    builtins = dict(_BUILTINS)
    if classes:
        builtins['__build_class__'], builtins['__baton_write__'] = _class_tools()
    scope['__builtins__'] = builtins
    _decimal.setcontext(_decimal.Context())
    try:
        if kind == 2:
            exec(code, scope)
            value = None
        else:
            value = eval(code, scope)
    except MemoryError:
        raise
    except KeyboardInterrupt:
        raise
    except _Failure:
        raise
    except BaseException as e:
        raise _Failure('script_error', _message(e), _line_of(e.__traceback__))
    if kind == 0:
        try:
            return 'T' if value else 'F'
        except BaseException as e:
            raise _Failure('script_error', _message(e), _line_of(e.__traceback__))
    if kind == 1:
        try:
            out = _convert(value, 'the result', set(), True)
        except _Drop:
            raise _Failure('script_result', 'the result is not JSON (%s)' % type(value).__name__)
        return 'R' + _dumps(out)
    assigned = {}
    deleted = []
    for name, value in scope.items():
        # __builtins__, and what Python itself leaves in a module's globals:
        # __warningregistry__ (a deprecation warning such as
        # datetime.utcnow()'s), __conditional_annotations__ (\`x: int = 1\`).
        # SpiffArena drops __annotations__ likewise; a script cannot name
        # them (the checker refuses names starting with '__').
        if name.startswith('__'):
            continue
        if offered.get(name, _NOTHING) is value:
            continue
        try:
            out = _convert(value, "variable '%s'" % name, set(), True)
        except _Drop:
            continue
        if name in inputs:
            before = inputs[name]
            if name in texts:
                now = _dumps(out)
                if now == texts[name] or now == _dumps(_loads(texts[name])):
                    continue
                assigned[name] = out
                continue
            if value is before and type(out) is type(before):
                continue
            if type(out) is type(before) and out == before:
                continue
        assigned[name] = out
    for name in inputs:
        if name not in scope:
            deleted.append(name)
    reply = {'a': assigned}
    if deleted:
        reply['d'] = deleted
    return 'S' + _dumps(reply)
`;
