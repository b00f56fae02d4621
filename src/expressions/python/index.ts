/**
 * Conditions, expressions and scripts in Python (issue 14 part 2), run by
 * Pyodide (CPython 3.14 in WebAssembly: the npm package `pyodide`, which
 * ships its WebAssembly and standard library and loads offline from
 * node_modules) in a sandbox process of its own. The engine asks for it
 * for every expression the model's language makes Python (bpmn/index.ts
 * "Languages"); boot.ts creates it on the first Python step and lets that
 * step await `ready()` instead of blocking on Pyodide's load.
 *
 * ## Process layout
 *
 * The same as the JavaScript sandbox's (../javascript/index.ts, "Process layout"): the
 * host thread blocks in `Atomics.wait` on a SharedArrayBuffer, a bridge
 * thread (../bridge.ts) forwards the request to the Python sandbox process
 * (child.ts) over its stdin and the answer back; ../channel.ts is the host's
 * end of it and is shared by both languages. The request format is
 * ../protocol.ts's: the source, a JSON object of the primitive variables,
 * and (name, JSON) of each object or array variable. The process is started
 * with the evaluator and runs with an empty environment; Pyodide loads once
 * per process (~3-7 s and ~180 MB here), and `startTimeoutMs` (60 s) covers
 * it. It is never the role's own process.
 *
 * ## Semantics (SpiffWorkflow's PythonScriptEngine)
 *
 * - One interpreter serves every evaluation; each gets a fresh globals dict:
 *   the variables whose name occurs in the source (a script can name a
 *   variable only in its text; a source with a non-ASCII character gets all
 *   of them, since Python folds identifiers to NFKC), parsed from JSON.
 * - A script is `exec`uted; `assigned` reports every top-level name it left
 *   bound whose JSON differs from what was passed in (new names, rebindings,
 *   in-place changes such as `items.append(4)`, loop variables too, as
 *   SpiffArena keeps them). `deleted` lists the variables it deleted (`del x`).
 * - Conditions and expressions are `eval`uated Python expressions
 *   (`amount > 1000 and approved`, `len(items) == 0`, `x is None`);
 *   a condition is the Python truth of its value.
 * - Offered as globals, as SpiffArena does: `datetime` (the class),
 *   `timedelta`, `date`, `Decimal`, `sanitize_for_md`, and the modules
 *   `time` (its `sleep` in 10 ms slices, so the time limit still ends a
 *   long one), `decimal`, `json`, `re`, `random`, `uuid`, `calendar` (also
 *   importable, with `math` and `datetime`). Like SpiffArena, they sit in
 *   the script's globals beside the variables: a variable of the same name
 *   wins, `del time` works, and rebinding one makes it a variable; an
 *   untouched one is never reported. Plus RestrictedPython's safe builtins and `all`,
 *   `any`, `dict`, `list`, `set`, `enumerate`, `filter`, `map`, `max`,
 *   `min`, `sum`, `format`, `getattr`/`hasattr` (refusing `_` names),
 *   a silent `print`, and the exception classes. `pytz` and `dateparser`
 *   are not part of Pyodide's standard library and are not offered.
 *
 * ## Values across the boundary
 *
 * In: JSON (`null`/`true`/`false` are `None`/`True`/`False`). Out:
 * `datetime`/`date`/`time` → ISO 8601 strings (`isoformat()`); `timedelta`
 * → an ISO 8601 duration (`P1DT2H3.5S`, `-PT1H`, `PT0S`); `Decimal` → a
 * number when that number is exactly the decimal, else its string; `UUID`
 * → its string; tuples, sets and frozensets → lists (sets sorted when they
 * can be); NaN and infinities → null. A top-level name bound to anything
 * else (function, class, module, bytes, an object) is dropped from the
 * result, as SpiffArena strips callables and modules. Inside a value, such
 * a value is `script_result`, and so are a dict key that is not a string,
 * a cycle, and a NUL character or an unpaired surrogate (Postgres cannot
 * store them). A result longer than a quarter of `memoryLimitMb` is
 * `script_memory`.
 *
 * ## Errors
 *
 * An exception is `script_error` with `Type: message` and the line of the
 * innermost frame of the user's source (`NameError: name 'rate' is not
 * defined`, line 1); a SyntaxError (or IndentationError) is `syntax_error`
 * with its line and column; so is a source the checker below refuses.
 *
 * ## Limits
 *
 * - Time: a watchdog thread in the sandbox process sets Pyodide's interrupt
 *   buffer at `timeoutMs` (KeyboardInterrupt, also inside long integer
 *   arithmetic) and again every 50 ms; the evaluation is `script_timeout`
 *   and the interpreter goes on. A script that swallows every interrupt
 *   (`except BaseException`) is killed by the host's `hardTimeoutMs` and
 *   the next evaluation waits for a new process (Pyodide's load).
 * - Memory: the WebAssembly memory may not grow past `memoryLimitMb`
 *   (default 256; Pyodide itself takes ~32): Python gets a MemoryError,
 *   the evaluation is `script_memory`, and the interpreter goes on.
 * - Recursion: `sys.setrecursionlimit(recursionLimit)` (default 1000, as
 *   CPython): RecursionError, a `script_error` with a line. Deep recursion
 *   in C (`__repr__` calling `repr(self)`, a 200,000-deep list) also ends
 *   as RecursionError because the interpreter runs in a worker thread with
 *   a 256 MB stack: on the 1 MB main-thread stack, the JavaScript stack
 *   overflowed first, which is a Pyodide fatal error. A fatal error ends
 *   the process: `script_crash`, and a new process starts.
 *
 * ## Isolation
 *
 * The interpreter can reach JavaScript (`js`, `pyodide_js`, `pyodide.ffi`)
 * and the emscripten file system (which holds only Pyodide's standard
 * library and empty /home and /tmp: nothing of the host is mounted). The
 * sandbox denies the paths there:
 * - `js` and `pyodide_js` are unregistered after load; a script's `import`
 *   goes through an `__import__` that answers only the allow-list above,
 *   with read-only namespaces holding the public non-module attributes of
 *   the real modules (`uuid.os`, `json.decoder` do not exist);
 * - its builtins are a fresh copy of the safe set per evaluation: no `open`,
 *   `eval`, `exec`, `compile`, `globals`, `vars`, `dir`, `type`, `setattr`,
 *   `input`;
 * - before compiling, the syntax tree is checked (runner.ts `_check`): no
 *   attribute whose name starts with `_` (`__class__`, `__subclasses__`,
 *   `__globals__`, `random._os`) or that inspects frames and code
 *   (`gi_frame`, `f_globals`, `tb_frame`, `mro`, `format_map`, …), also in
 *   `match` class patterns; no name starting with `__` (`__builtins__`,
 *   `__import__`), except the special methods a class of the script
 *   defines; no relative or star import;
 * - attribute writes (`a.x = v`, `a.x += 1`, `del a.x`, `for a.x in …`) are
 *   rewritten to go through a guard that allows them only on a class the
 *   script defined in this evaluation and its instances: functions and
 *   classes of the offered modules are shared by every evaluation
 *   (`json.loads = None`, `uuid.UUID.hex = 1` would reach the next one);
 * - what one evaluation could leave behind is renewed per evaluation: the
 *   decimal context, the `random` generator, the builtins dict.
 *
 * ## The fast path
 *
 * Most conditions and script tasks are one-liners (`amount > 1000 and
 * approved`, `status in ('new', 'open')`, `total = price * qty`). simple.ts
 * evaluates those in the host process, without the round trip: ~0.3-0.4 µs
 * for such a condition and ~0.8 µs for a two-assignment script
 * (bench/python.ts), against ~60-250 µs for the round trip, depending on
 * the machine's load. No user code runs. The source is parsed into a closed
 * set of node kinds and evaluated by simple.ts's own code over the JSON
 * variables. The fast path answers only when it is sure to answer as CPython
 * in the sandbox would; otherwise it defers and the sandbox evaluates the
 * source, with its exact errors. `fastPath: false` turns it off.
 *
 * - Grammar: int, float and plain string literals (escapes `\ ' " 
 	
 *   
`), True/False/None, variable names, `d['key']` and `lst[i]` (negative
 *   too), unary `- +`, `+ - * / // % **`, comparisons and their chains,
 *   `is None`/`is not None` (and True/False), `in`/`not in` on strings,
 *   lists, dicts and list/tuple displays, `not`/`and`/`or`, `x if c else y`;
 *   a script is assignments (`=` and the augmented ones), one or more per
 *   line separated by `;`, with comments and blank lines. An expression is
 *   one line, except inside brackets. Anything else (calls, attributes,
 *   f-strings, slices, list values, `del`, statements) is the sandbox's.
 * - Values follow Python's view of JSON: an integral number is an int, any
 *   other a float. So `7 // 2` is 3, `-7 // 2` is -4, `-7.5 % 2` is 0.5
 *   (CPython's float divmod), `-0.0` comes back as -0 and the int 0 as 0,
 *   `True + 1` is 2, `True == 1` and `1 == 1.0` are true, `and`/`or` return
 *   an operand with Python's truth (0, 0.0, '', [], {} and None are false),
 *   strings compare by code point, and a script's `assigned` is the
 *   sandbox's: a rebinding to an equal value of the same type (`b = 2` when
 *   b is 2) is left out, `x = x * 1.0` (int to float) is not.
 * - It defers on any exception Python would raise (a missing name, which
 *   may also be a builtin or module; str + int; None < 1; a missing key or
 *   index; ZeroDivisionError), on ints beyond ±(2^53 - 1) (read or
 *   computed), on float `**` and negative powers, on results that are not
 *   finite, on strings longer than 100,000 characters, on text with NUL or
 *   an unpaired surrogate in a result (the sandbox's `script_result`), on
 *   `is` between other values than None/True/False, and on a source with a
 *   surrogate, a CR or NUL. A script also defers when a variable the sandbox
 *   would be sent (its name occurs in the source; all of them for a
 *   non-ASCII source) holds such text, or is not plain JSON. The sandbox
 *   turns each of them back into JSON and would fail.
 * - It trusts the JsonObject type for the variables a condition or
 *   expression does not read: a BigInt or a cycle there makes the
 *   sandbox's request fail, but the fast path does not look at them.
 * - Trees deeper than ~(recursionLimit - 20) / 3 (at most 40) are the
 *   sandbox's: its checker walks the syntax tree with Python recursion, and
 *   under a low limit a deep tree is a RecursionError (`syntax_error`).
 * - A source it answers does not wait for Pyodide to load and never reaches
 *   the sandbox process. A warm-up or a probe of the sandbox must use a
 *   source the fast path defers (`len([]) == 0`), or `fastPath: false`.
 * - test/expressions/python-simple.test.ts compares it with the sandbox
 *   case by case and on ~9,000 random sources and variables (about a third
 *   answered by the fast path and compared; `FUZZ_RUNS=n` for n times more).
 *
 * ## Known limits
 *
 * - `str.format` still follows attribute names (`'{0.__class__}'.format(x)`):
 *   the result is text, never an object.
 * - Each evaluation the fast path defers is a round trip to the sandbox
 *   process: ~200-250 µs on a loaded machine (~60-90 µs on a quiet one)
 *   for a trivial condition, about what the JavaScript sandbox costs without
 *   its fast path (bench/python.ts). The interpreter's own part is ~25 µs
 *   for a condition and ~70 µs for a small script.
 */
export { createPythonEvaluator } from './evaluator.js';
export type { PythonEvaluator, PythonEvaluatorOptions } from './evaluator.js';
