/*
 * aiokv._core._ccodec: the walk of a value before it is encoded, in C.
 *
 * least_json_size(value) returns what aiokv._core.codec._least_json_size_py returns, which is
 * the specification: (least, kinds), where least is a lower bound of the size of the value's
 * compact JSON (some number over MAX_VALUE_BYTES once the bound passes it: the same one, as
 * both check it against the limit at the same points), -1 if containers nest deeper than
 * MAX_VALUE_DEPTH, or -2 (CYCLE) if a container is met inside itself; and kinds is 0
 * (plain), 1 (plain with floats) or 2 (other). It walks in the same order as the Python
 * walk, so the two agree on which of a cycle, the depth or the size is met first:
 *
 *   - a dict with no container among its values (the common value) is bounded in one pass;
 *   - otherwise a stack of (container, depth) is popped until empty. A container popped is a
 *     cycle if it is on the path of containers being walked, too deep past MAX_VALUE_DEPTH;
 *     else its brackets and commas (len + 1, and a dict's len colons more) are counted, then
 *     its keys and scalar items, and its containers are pushed in order (so walked last
 *     first);
 *   - a list of BATCH or more exact dicts, none on the path, is bounded all at once: their
 *     brackets, then their keys and values, their values' containers pushed two levels down.
 *
 * encode_plain(value) is _encode_plain_py: the walk, then orjson.dumps (called once the walk
 * is over) when the walk found nothing that needs the read-back check, so that a create of a
 * plain value makes one call into C beside its own.
 *
 * check_key(key) is _check_key_py for the keys it accepts: a str of 1 to MAX_KEY_LENGTH
 * characters, encodable as UTF-8, gives its UTF-8 bytes. Every other argument is handed to
 * _check_key_py itself (given once by use_key_check), which raises the error that says what
 * is wrong: the messages have one home, and the common case makes no Python call.
 *
 * Only exact types are plain; a subclass of dict, list or str, and a tuple, are counted
 * by their own storage (as orjson writes them), whatever their __len__ or __iter__ say. No
 * Python code runs and no Python object is made during the walk, so the value cannot change
 * under it and every reference it holds is borrowed.
 *
 * Cost: a few nanoseconds an item. Memory: the path (at most MAX_VALUE_DEPTH containers) and
 * its hash set live on the C stack (about 7 KiB); the stack of containers to walk starts there
 * too and grows on the heap only past INLINE_STACK containers: to MAX_VALUE_BYTES entries at
 * most, 256 KiB (each container counts a byte in its parent before it is pushed), for a value
 * such as a list of 16,000 empty lists. The Python walk's stack of tuples takes four
 * times that there. The hostile values of benchmarks/bench_codec.py (a 1 GiB string, lists of
 * 10**7 items, lists 10**5 deep) are refused with about 1 KiB traced in all.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

/* aiokv/_core/codec.py: the tests compare the two walks at every limit, so a change made
   there and not here fails them. */
#define MAX_VALUE_BYTES 16384
#define MAX_VALUE_DEPTH 256
#define MAX_KEY_LENGTH 32
#define BATCH 8
#define TOO_DEEP (-1)
#define CYCLE (-2)
#define PLAIN 0
#define PLAIN_WITH_FLOATS 1
#define OTHER 2

#define SAW_OTHER 1
#define SAW_FLOAT 2

/* What a step of the walk says: go on; stop, the bound past the limit; a container among a
   flat dict's values (walk it nested); too deep; a cycle; or fail (out of memory, an
   exception set). */
#define GO 0
#define STOP 1
#define HOLDS_CONTAINER 2
#define DEEPER 3
#define LOOPS 4
#define FAIL (-1)

/* The path is searched entry by entry while it is short (most values nest a few levels);
   past SHORT_PATH entries a hash set of it is built, twice the longest path and a power of
   two so a probe ends soon, and kept from then on. */
#define SHORT_PATH 16
#define PATH_SLOTS 512
#define INLINE_STACK 64

typedef struct {
    PyObject *obj;
    Py_ssize_t depth;
} Entry;

typedef struct {
    int64_t least;
    int flags;
    /* The containers still to walk, popped last first. */
    Entry *stack;
    Py_ssize_t size, capacity;
    /* The containers being walked, from the value down; once hashed is set, slot[i] is
       path[i]'s slot in table, which holds i + 1 there (0 is empty). Entries leave in the
       reverse order they came in, so emptying a slot restores the table exactly as it was
       before that entry came. */
    Py_ssize_t path_len;
    int hashed;
    Entry path[MAX_VALUE_DEPTH];
    uint16_t slot[MAX_VALUE_DEPTH];
    uint16_t table[PATH_SLOTS];
    Entry inline_stack[INLINE_STACK];
} Walk;

/* ---------------------------------------------------------------- the path and the stack */

static inline size_t
slot_of(PyObject *obj)
{
    /* Fibonacci hashing: the top bits of the address times 2**64 / phi. */
    return (size_t)(((uint64_t)(uintptr_t)obj * UINT64_C(0x9E3779B97F4A7C15)) >> (64 - 9));
}

static int
on_path(const Walk *w, PyObject *obj)
{
    if (!w->hashed) {
        for (Py_ssize_t i = 0; i < w->path_len; i++) {
            if (w->path[i].obj == obj) {
                return 1;
            }
        }
        return 0;
    }
    for (size_t i = slot_of(obj); w->table[i]; i = (i + 1) % PATH_SLOTS) {
        if (w->path[w->table[i] - 1].obj == obj) {
            return 1;
        }
    }
    return 0;
}

/* The caller has checked obj is not on the path, and depth <= MAX_VALUE_DEPTH: depths on
   the path rise strictly from 1, so it never holds more than MAX_VALUE_DEPTH entries. */
static void
hash_entry(Walk *w, Py_ssize_t at)
{
    size_t i = slot_of(w->path[at].obj);
    while (w->table[i]) {
        i = (i + 1) % PATH_SLOTS;
    }
    w->table[i] = (uint16_t)(at + 1);
    w->slot[at] = (uint16_t)i;
}

static void
path_push(Walk *w, PyObject *obj, Py_ssize_t depth)
{
    w->path[w->path_len].obj = obj;
    w->path[w->path_len].depth = depth;
    w->path_len++;
    if (w->hashed) {
        hash_entry(w, w->path_len - 1);
    }
    else if (w->path_len > SHORT_PATH) {
        memset(w->table, 0, sizeof w->table);
        for (Py_ssize_t at = 0; at < w->path_len; at++) {
            hash_entry(w, at);
        }
        w->hashed = 1;
    }
}

/* Leave every container of the path at depth or below it: all of them have been walked. */
static void
path_leave(Walk *w, Py_ssize_t depth)
{
    while (w->path_len && w->path[w->path_len - 1].depth >= depth) {
        w->path_len--;
        if (w->hashed) {
            w->table[w->slot[w->path_len]] = 0;
        }
    }
}

static int
push(Walk *w, PyObject *obj, Py_ssize_t depth)
{
    if (w->size == w->capacity) {
        Py_ssize_t capacity = 2 * w->capacity;
        Entry *grown = w->stack == w->inline_stack
                           ? PyMem_Malloc((size_t)capacity * sizeof(Entry))
                           : PyMem_Realloc(w->stack, (size_t)capacity * sizeof(Entry));
        if (grown == NULL) {
            PyErr_NoMemory();
            return FAIL;
        }
        if (w->stack == w->inline_stack) {
            memcpy(grown, w->inline_stack, sizeof w->inline_stack);
        }
        w->stack = grown;
        w->capacity = capacity;
    }
    w->stack[w->size].obj = obj;
    w->stack[w->size].depth = depth;
    w->size++;
    return GO;
}

/* ---------------------------------------------------------------- items */

static inline int
is_container(PyObject *obj)
{
    return PyDict_Check(obj) || PyList_Check(obj) || PyTuple_Check(obj);
}

/* A container's own length: its storage's, whatever a subclass's __len__ says. */
static inline Py_ssize_t
length_of(PyObject *obj)
{
    return PyDict_Check(obj) ? PyDict_GET_SIZE(obj) : Py_SIZE(obj);
}

/* Add a string's least JSON size: at least a byte a character, and the quotes. The bound is
   checked against the limit only where the Python walk checks it, so that the two give the
   same number even past the limit (in an int64_t, the items of the MAX_VALUE_BYTES
   containers at most looked at cannot overflow). */
static inline int
add_str(Walk *w, PyObject *str)
{
#if PY_VERSION_HEX < 0x030C0000
    /* A legacy string (made by the old C API) is readied first, as len() would. */
    if (!PyUnicode_IS_READY(str) && PyUnicode_READY(str) < 0) {
        return FAIL;
    }
#endif
    w->least += PyUnicode_GET_LENGTH(str) + 2;
    return GO;
}

/* An item of a container: a scalar counted, a container pushed at depth (_least_items). */
static inline int
add_item(Walk *w, PyObject *item, Py_ssize_t depth)
{
    PyTypeObject *type = Py_TYPE(item);
    if (type == &PyUnicode_Type) {
        return add_str(w, item);
    }
    if (type == &PyLong_Type || type == &PyBool_Type || item == Py_None) {
        w->least++;
        return GO;
    }
    if (type == &PyDict_Type || type == &PyList_Type) {
        return push(w, item, depth);
    }
    if (type == &PyFloat_Type) {
        w->least++;
        w->flags |= SAW_FLOAT;
        return GO;
    }
    w->flags |= SAW_OTHER; /* a subclass, a tuple or a type JSON lacks: never plain */
    if (PyUnicode_Check(item)) {
        return add_str(w, item);
    }
    if (is_container(item)) {
        return push(w, item, depth);
    }
    w->least++;
    return GO;
}

/* A dict's keys (those that are strings, subclasses too) and values (_least_keys). */
static int
add_dict(Walk *w, PyObject *dict, Py_ssize_t depth)
{
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(dict, &pos, &key, &value)) {
        int step = PyUnicode_Check(key) ? add_str(w, key) : GO;
        if (step == GO) {
            step = add_item(w, value, depth);
        }
        if (step != GO) {
            return step;
        }
    }
    return GO;
}

static int
add_items(Walk *w, PyObject *seq, Py_ssize_t depth)
{
    PyObject **items = PySequence_Fast_ITEMS(seq); /* a list's or a tuple's own array */
    for (Py_ssize_t i = 0, n = Py_SIZE(seq); i < n; i++) {
        int step = add_item(w, items[i], depth);
        if (step != GO) {
            return step;
        }
    }
    return GO;
}

/* ---------------------------------------------------------------- a list of records */

/* Whether list's items are all exact dicts, none of them on the path (_plain_dicts). */
static int
plain_dicts(const Walk *w, PyObject *list)
{
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
        PyObject *item = PyList_GET_ITEM(list, i);
        if (!PyDict_CheckExact(item) || on_path(w, item)) {
            return 0;
        }
    }
    return 1;
}

/* A list of exact dicts at once: all their brackets (STOP if they alone pass the limit),
   then all their keys and values, their values' containers pushed at depth (_least_dicts). */
static int
add_dicts(Walk *w, PyObject *list, Py_ssize_t depth)
{
    Py_ssize_t n = PyList_GET_SIZE(list);
    int64_t brackets = n;
    for (Py_ssize_t i = 0; i < n; i++) {
        brackets += 2 * (int64_t)PyDict_GET_SIZE(PyList_GET_ITEM(list, i));
    }
    w->least += brackets;
    if (brackets > MAX_VALUE_BYTES) {
        return STOP;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        int step = add_dict(w, PyList_GET_ITEM(list, i), depth);
        if (step != GO) {
            return step;
        }
    }
    return GO;
}

/* ---------------------------------------------------------------- the walks */

/* A container popped at depth: its own size, keys and scalars, its containers pushed. */
static int
add_container(Walk *w, PyObject *obj, Py_ssize_t depth)
{
    /* Brackets and commas, n + 1 for n items (two for none: a lower bound), and a dict's n
       colons more. */
    int64_t size = (int64_t)length_of(obj);
    w->least += (PyDict_Check(obj) ? 2 * size : size) + 1;
    if (w->least > MAX_VALUE_BYTES) {
        return STOP; /* before looking at a single item: a list of 10**7 costs nothing */
    }
    path_push(w, obj, depth);
    int step;
    if (PyList_CheckExact(obj)) {
        step = PyList_GET_SIZE(obj) >= BATCH && depth < MAX_VALUE_DEPTH && plain_dicts(w, obj)
                   ? add_dicts(w, obj, depth + 2)
                   : add_items(w, obj, depth + 1);
    }
    else {
        if (!PyDict_CheckExact(obj)) {
            w->flags |= SAW_OTHER; /* a tuple or a subclass: bounded as an exact one */
        }
        step = PyDict_Check(obj) ? add_dict(w, obj, depth + 1) : add_items(w, obj, depth + 1);
    }
    return step == GO && w->least > MAX_VALUE_BYTES ? STOP : step;
}

/* _least_nested_json_size: GO when walked to the end, STOP past the limit, DEEPER, LOOPS
   or FAIL. */
static int
walk_nested(Walk *w, PyObject *value)
{
    w->least = 0;
    w->flags = PyDict_CheckExact(value) ? 0 : SAW_OTHER;
    w->stack[0].obj = value;
    w->stack[0].depth = 1;
    w->size = 1;
    while (w->size) {
        Entry next = w->stack[--w->size];
        path_leave(w, next.depth);
        if (on_path(w, next.obj)) {
            return LOOPS;
        }
        if (next.depth > MAX_VALUE_DEPTH) {
            return DEEPER;
        }
        int step = add_container(w, next.obj, next.depth);
        if (step != GO) {
            return step;
        }
    }
    return GO;
}

/* The flat dict of _least_json_size: GO when bounded, STOP past the limit, HOLDS_CONTAINER
   when a value is a container (then it is walked nested). As in the Python walk, a str
   subclass counts one byte here, and only keys exactly of type str count. */
static int
walk_flat(Walk *w, PyObject *dict)
{
    Py_ssize_t pos = 0;
    PyObject *key, *item;
    w->least = 2 * (int64_t)PyDict_GET_SIZE(dict) + 1;
    w->flags = SAW_OTHER;
    if (w->least > MAX_VALUE_BYTES) {
        return STOP;
    }
    w->flags = 0;
    while (PyDict_Next(dict, &pos, &key, &item)) {
        PyTypeObject *type = Py_TYPE(item);
        int step = GO;
        if (type == &PyUnicode_Type) {
            step = add_str(w, item);
        }
        else if (type == &PyLong_Type || type == &PyBool_Type || item == Py_None) {
            w->least++;
        }
        else if (type == &PyFloat_Type) {
            w->least++;
            w->flags |= SAW_FLOAT;
        }
        else if (is_container(item)) {
            return HOLDS_CONTAINER;
        }
        else { /* a subclass of str or int, or a type JSON lacks: one byte, never plain */
            w->least++;
            w->flags |= SAW_OTHER;
        }
        if (step == GO && PyUnicode_CheckExact(key)) {
            step = add_str(w, key);
        }
        if (step == FAIL) {
            return FAIL;
        }
    }
    return GO;
}

/* ---------------------------------------------------------------- the functions */

/* The walk's result: least (or CYCLE, or TOO_DEEP) and kinds; -1 with an exception set. */
static int
bound(PyObject *value, int64_t *least, int *kinds)
{
    if (!PyDict_Check(value)) {
        PyErr_Format(PyExc_TypeError, "a value is a dict, not %.200s", Py_TYPE(value)->tp_name);
        return -1;
    }
    Walk w;
    w.stack = w.inline_stack;
    w.capacity = INLINE_STACK;
    w.size = 0;
    w.path_len = 0;
    w.hashed = 0;
    int step = PyDict_CheckExact(value) ? walk_flat(&w, value) : HOLDS_CONTAINER;
    if (step == HOLDS_CONTAINER) {
        step = walk_nested(&w, value);
    }
    if (w.stack != w.inline_stack) {
        PyMem_Free(w.stack);
    }
    *least = step == LOOPS ? CYCLE : step == DEEPER ? TOO_DEEP : w.least;
    *kinds = (w.flags & SAW_OTHER) || step == LOOPS || step == DEEPER ? OTHER
             : (w.flags & SAW_FLOAT)                                 ? PLAIN_WITH_FLOATS
                                                                     : PLAIN;
    return step == FAIL ? -1 : 0;
}

/* (least, kinds): built only once the walk is over, as building an object may run the
   garbage collector, and with it Python code. */
static PyObject *
result(int64_t least, int kinds)
{
    PyObject *bound = PyLong_FromLongLong((long long)least);
    PyObject *kind = PyLong_FromLong(kinds);
    PyObject *tuple = bound && kind ? PyTuple_Pack(2, bound, kind) : NULL;
    Py_XDECREF(bound);
    Py_XDECREF(kind);
    return tuple;
}

static PyObject *
least_json_size(PyObject *module, PyObject *value)
{
    (void)module;
    int64_t least;
    int kinds;
    return bound(value, &least, &kinds) < 0 ? NULL : result(least, kinds);
}

typedef struct {
    PyObject *dumps;        /* orjson.dumps */
    PyObject *encode_error; /* orjson.JSONEncodeError */
    PyObject *key_check;    /* aiokv._core.codec._check_key_py, once use_key_check gave it */
} State;

/* _check_key_py: the key's UTF-8 bytes; anything it would refuse goes to it, to raise. */
static PyObject *
check_key(PyObject *module, PyObject *key)
{
    if (PyUnicode_Check(key)) {
        Py_ssize_t length = PyUnicode_GET_LENGTH(key);
        if (length > 0 && length <= MAX_KEY_LENGTH) {
            PyObject *data = PyUnicode_AsUTF8String(key);
            if (data != NULL || !PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) {
                return data;
            }
            PyErr_Clear(); /* a lone surrogate: _check_key_py says where */
        }
    }
    State *state = PyModule_GetState(module);
    if (state->key_check == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "check_key() needs use_key_check() first");
        return NULL;
    }
    return PyObject_CallOneArg(state->key_check, key);
}

static PyObject *
use_key_check(PyObject *module, PyObject *function)
{
    if (!PyCallable_Check(function)) {
        PyErr_SetString(PyExc_TypeError, "use_key_check() takes a callable");
        return NULL;
    }
    State *state = PyModule_GetState(module);
    Py_XSETREF(state->key_check, Py_NewRef(function));
    Py_RETURN_NONE;
}

static int
holds_null(PyObject *data)
{
    const char *at = PyBytes_AS_STRING(data);
    const char *end = at + PyBytes_GET_SIZE(data);
    while ((at = memchr(at, 'n', (size_t)(end - at))) != NULL) {
        if (end - at >= 4 && memcmp(at, "null", 4) == 0) {
            return 1;
        }
        at++;
    }
    return 0;
}

/* _encode_plain_py: orjson's JSON of value when it needs no other check, else the walk's
   result. orjson is called once the walk is over, as any caller of it would. */
static PyObject *
encode_plain(PyObject *module, PyObject *value)
{
    int64_t least;
    int kinds;
    if (bound(value, &least, &kinds) < 0) {
        return NULL;
    }
    if (least < 0 || least > MAX_VALUE_BYTES || kinds == OTHER) {
        return result(least, kinds);
    }
    State *state = PyModule_GetState(module);
    PyObject *data = PyObject_CallOneArg(state->dumps, value);
    if (data == NULL) {
        if (!PyErr_ExceptionMatches(state->encode_error)) {
            return NULL;
        }
        PyErr_Clear();
        return result(least, kinds);
    }
    if (PyBytes_CheckExact(data) && PyBytes_GET_SIZE(data) <= MAX_VALUE_BYTES &&
        (kinds == PLAIN || !holds_null(data))) {
        return data;
    }
    Py_DECREF(data);
    return result(least, kinds);
}

/* Bytes of data's own size. orjson's result keeps the buffer it grew while writing: about
   8 KB held (and first touched, a page fault apiece) for a 1 KB value. One value at a time
   that is gone at once; a batch holding thousands of them would hold eight times its size. */
static PyObject *
right_sized(PyObject *data)
{
    PyObject *copy = PyBytes_FromStringAndSize(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data));
    Py_DECREF(data);
    return copy;
}

/* encode_plains: encode_plain of each value of the list, right-sized, for as long as it
   gives bytes; the values from the first it does not (or the first that is not exactly a
   dict) are left to the caller, which encodes them one by one and raises their errors. */
static PyObject *
encode_plains(PyObject *module, PyObject *values)
{
    if (!PyList_CheckExact(values)) {
        PyErr_SetString(PyExc_TypeError, "encode_plains() takes a list");
        return NULL;
    }
    PyObject *done = PyList_New(0);
    if (done == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(values); i++) {
        PyObject *value = PyList_GET_ITEM(values, i);
        if (!PyDict_CheckExact(value)) {
            break;
        }
        Py_INCREF(value); /* the list may change under a callback of orjson */
        PyObject *data = encode_plain(module, value);
        Py_DECREF(value);
        if (data == NULL) {
            Py_DECREF(done);
            return NULL;
        }
        if (!PyBytes_CheckExact(data)) {
            Py_DECREF(data);
            break;
        }
        data = right_sized(data);
        if (data == NULL || PyList_Append(done, data) < 0) {
            Py_XDECREF(data);
            Py_DECREF(done);
            return NULL;
        }
        Py_DECREF(data);
    }
    return done;
}

PyDoc_STRVAR(least_json_size_doc,
             "least_json_size(value, /)\n"
             "--\n"
             "\n"
             "A lower bound of the size of value's compact JSON (any number over the value\n"
             "limit once past it), -1 if it nests too deeply, -2 if it holds a cycle; and what\n"
             "kinds of objects it holds: 0 plain, 1 plain with floats, 2 other.\n"
             "\n"
             "The behaviour is that of aiokv._core.codec._least_json_size_py.");

PyDoc_STRVAR(encode_plain_doc,
             "encode_plain(value, /)\n"
             "--\n"
             "\n"
             "orjson's JSON of value if the walk found it within the limits and plain, and\n"
             "orjson wrote it within the size limit and without a null in place of a float;\n"
             "else the walk's result, (least, kinds), for the checks that remain.\n"
             "\n"
             "The behaviour is that of aiokv._core.codec._encode_plain_py.");

PyDoc_STRVAR(check_key_doc,
             "check_key(key, /)\n"
             "--\n"
             "\n"
             "The key's UTF-8 bytes, or the error the function given to use_key_check raises.\n"
             "\n"
             "The behaviour is that of aiokv._core.codec._check_key_py.");

PyDoc_STRVAR(use_key_check_doc,
             "use_key_check(function, /)\n"
             "--\n"
             "\n"
             "Hand every key check_key does not accept to function, which raises the error.");

PyDoc_STRVAR(encode_plains_doc,
             "encode_plains(values, /)\n"
             "--\n"
             "\n"
             "encode_plain of each value of the list, each in bytes of its own size, for as long\n"
             "as it gives bytes: a list as long as the leading values it took.\n"
             "\n"
             "The behaviour is that of aiokv._core.codec._encode_plains_py.");

static PyMethodDef ccodec_methods[] = {
    {"check_key", check_key, METH_O, check_key_doc},
    {"use_key_check", use_key_check, METH_O, use_key_check_doc},
    {"least_json_size", least_json_size, METH_O, least_json_size_doc},
    {"encode_plain", encode_plain, METH_O, encode_plain_doc},
    {"encode_plains", encode_plains, METH_O, encode_plains_doc},
    {NULL, NULL, 0, NULL},
};

static int
ccodec_exec(PyObject *module)
{
    State *state = PyModule_GetState(module);
    PyObject *orjson = PyImport_ImportModule("orjson");
    if (orjson == NULL) {
        return -1;
    }
    state->dumps = PyObject_GetAttrString(orjson, "dumps");
    state->encode_error = PyObject_GetAttrString(orjson, "JSONEncodeError");
    Py_DECREF(orjson);
    return state->dumps && state->encode_error ? 0 : -1;
}

static int
ccodec_traverse(PyObject *module, visitproc visit, void *arg)
{
    State *state = PyModule_GetState(module);
    Py_VISIT(state->dumps);
    Py_VISIT(state->encode_error);
    Py_VISIT(state->key_check);
    return 0;
}

static int
ccodec_clear(PyObject *module)
{
    State *state = PyModule_GetState(module);
    Py_CLEAR(state->dumps);
    Py_CLEAR(state->encode_error);
    Py_CLEAR(state->key_check);
    return 0;
}

static void
ccodec_free(void *module)
{
    ccodec_clear((PyObject *)module);
}

static PyModuleDef_Slot ccodec_slots[] = {
    {Py_mod_exec, (void *)ccodec_exec},
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
    {0, NULL},
};

static struct PyModuleDef ccodec_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "aiokv._core._ccodec",
    .m_doc = "The walk of a value before it is encoded, in C: see aiokv._core.codec.",
    .m_size = sizeof(State),
    .m_methods = ccodec_methods,
    .m_slots = ccodec_slots,
    .m_traverse = ccodec_traverse,
    .m_clear = ccodec_clear,
    .m_free = ccodec_free,
};

PyMODINIT_FUNC
PyInit__ccodec(void)
{
    return PyModuleDef_Init(&ccodec_module);
}
