/*
 * aiokv._bitcask.format._crecord: the read path's check of a record, in C.
 *
 * value_start(buf, key) behaves as aiokv._bitcask.format.record.value_start_py, which is the specification:
 * the offset at which the value begins if buf is exactly one sound put record of key, with no
 * deadline and in the orjson encoding (VALUE_JSON64); else -1. "Sound" means every test of
 * aiokv._bitcask.format.record.check_put, made in the same order and with the same arithmetic, so that a
 * record this function accepts is one that check_put would have accepted too. Anything else
 * (a deadline, the json encoding, damage) the caller leaves to check_put and decode, which
 * say what is wrong; so this function never needs to build an error or a tuple.
 *
 * put_value(buf, offset, size, key) behaves as aiokv._bitcask.format.record.put_value_py: the
 * same check of the record at buf[offset:offset + size], made in place, and then only the
 * value's bytes copied out, which is what orjson decodes fastest. A read of a segment's memory
 * map thus makes one copy of the value, where a slice, a check and a memoryview made three
 * objects and copied the whole record.
 *
 * encode_puts(first_seq, keys, values, expiries, encodings[, headroom]) is
 * aiokv._bitcask.format.record.encode_puts_py for the batches it takes: lists of bytes keys
 * and values, float expiries and int encodings that encode_put can pack. It builds the
 * batch's records back to back in one bytes object (one allocation and one copy of each key
 * and value, where a record apiece and a join made two), and gives their sizes. Given a
 * headroom, the records start that many zero bytes into a bytearray, for the caller to put
 * the batch record there in place: a batch of megabytes is then never copied again before
 * it is written. For any other argument it answers None, and the caller encodes with the
 * Python function, whose errors (struct.error for a field out of range) are then the ones
 * raised.
 *
 * Reads are the common operation, and on a record of a KiB or so check_put's unpacking,
 * comparisons and tuple cost more than its CRC; here the header is read in place, and all but
 * the CRC costs a few tens of nanoseconds.
 *
 * The GIL is held throughout: a record is at most a few tens of KiB, whose CRC takes
 * microseconds, less than releasing and taking the GIL back would cost.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <zlib.h>

/* The record header of aiokv/_record.py (see the table above encode_put there) and the
   limits of aiokv/_validation.py. The tests compare this module with the pure-Python one
   at every boundary, so a change made there and not here fails them. */
#define HEADER_SIZE 28
#define FORMAT_VERSION 1
#define KIND_PUT 1
#define VALUE_JSON64 1
#define MAX_VALUE_BYTES 16384

#define AT_CRC 0
#define AT_VERSION 4
#define AT_KIND 5
#define AT_KEY_LEN 6
#define AT_ENCODING 7
#define AT_VALUE_LEN 8
#define AT_EXPIRY 20
#define AT_SEQ 12
#define KEY_LEN_MAX 255 /* the header's one-byte field; the store's keys stop at 128 */

/* Little-endian whatever the host: the compiler turns these into single loads on x86 and
   ARM, so they cost no more than a cast would, without its alignment and aliasing traps. */
static inline uint32_t
load_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t
load_le64(const unsigned char *p)
{
    return (uint64_t)load_le32(p) | (uint64_t)load_le32(p + 4) << 32;
}

static inline void
store_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static inline void
store_le64(unsigned char *p, uint64_t v)
{
    store_le32(p, (uint32_t)v);
    store_le32(p + 4, (uint32_t)(v >> 32));
}

/* CRC-32 as zlib.crc32 computes it (the same library, started from 0). zlib takes a length
   as a uInt; the checks before the CRC bound a record far below that, but the function
   should not depend on its caller for its own correctness. */
static uint32_t
crc_of(const unsigned char *p, size_t n)
{
    uLong crc = 0;
#if SIZE_MAX > UINT_MAX
    while (n > UINT_MAX) {
        crc = crc32(crc, p, UINT_MAX);
        p += UINT_MAX;
        n -= UINT_MAX;
    }
#endif
    return (uint32_t)crc32(crc, p, (uInt)n);
}

/* The CRC-32 function the package uses (aiokv._bitcask.format.crc), when it is not zlib's: isal's computes
   the same function several times faster, but only through Python. Set once, at import of
   aiokv._bitcask.format.record, by use_crc32(). */
static PyObject *crc_function = NULL;

/* crc_function over the n bytes at p, into *out; -1 with an exception set on failure. */
static int
crc_through(const unsigned char *p, size_t n, uint32_t *out)
{
    /* A view of the caller's buffer, which stays held for the whole call. */
    PyObject *view = PyMemoryView_FromMemory((char *)p, (Py_ssize_t)n, PyBUF_READ);
    if (view == NULL) {
        return -1;
    }
    PyObject *result = PyObject_CallOneArg(crc_function, view);
    if (Py_REFCNT(view) > 1) {
        /* Kept (by the function, or by the traceback of its exception): released, so that it
           cannot outlive the buffer it views. The function's own error, if any, is kept.
           3.12 holds a raised exception as one object (PyErr_Fetch and PyErr_Restore are
           deprecated there); 3.10 and 3.11 have only the three-part calls. */
#if PY_VERSION_HEX >= 0x030C0000
        PyObject *raised = PyErr_GetRaisedException();
#else
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
#endif
        PyObject *released = PyObject_CallMethod(view, "release", NULL);
        if (released == NULL) {
#if PY_VERSION_HEX >= 0x030C0000
            Py_XDECREF(raised);
#else
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(traceback);
#endif
            Py_XDECREF(result);
            result = NULL;
        }
        else {
#if PY_VERSION_HEX >= 0x030C0000
            PyErr_SetRaisedException(raised);
#else
            PyErr_Restore(type, value, traceback);
#endif
            Py_DECREF(released);
        }
    }
    Py_DECREF(view);
    if (result == NULL) {
        return -1;
    }
    unsigned long value = PyLong_AsUnsignedLongMask(result);
    Py_DECREF(result);
    if (value == (unsigned long)-1 && PyErr_Occurred()) {
        return -1;
    }
    *out = (uint32_t)value;
    return 0;
}

/* The tests of check_put, in its order: the cheap ones first, the CRC last. -2 with an
   exception set if the CRC function failed. */
static long
check(const unsigned char *buf, size_t len, const unsigned char *key, size_t key_size)
{
    if (len < HEADER_SIZE) {
        return -1;  /* check_put: struct.error from unpack_from */
    }
    size_t key_len = buf[AT_KEY_LEN];
    size_t value_start = HEADER_SIZE + key_len;
    uint32_t value_len = load_le32(buf + AT_VALUE_LEN);
    /* In 64 bits neither side can overflow: at most 283 + 2**32 - 1 against a length. */
    if (buf[AT_VERSION] != FORMAT_VERSION || buf[AT_KIND] != KIND_PUT
        || (uint64_t)value_start + value_len != (uint64_t)len) {
        return -1;
    }
    /* A key length of 0 is not refused here, as check_put does not refuse it: only decode
       does, and no key of the store is empty, so such a record never matches a read. */
    if (key_size != key_len || (key_len != 0 && memcmp(buf + HEADER_SIZE, key, key_len) != 0)) {
        return -1;
    }
    /* check_put accepts either encoding; only VALUE_JSON64 is this function's to accept. */
    if (buf[AT_ENCODING] != VALUE_JSON64 || value_len > MAX_VALUE_BYTES) {
        return -1;
    }
    /* check_put's "expiry >= 0.0" and the caller's "expiry == 0.0" together hold exactly for
       +0.0 and -0.0, the two float64 values whose bits, bar the sign, are all zero. Testing
       the bits needs no float and so cannot depend on how the platform compares a NaN. */
    if ((load_le64(buf + AT_EXPIRY) << 1) != 0) {
        return -1;
    }
    uint32_t crc;
    if (crc_function == NULL) {
        crc = crc_of(buf + 4, len - 4);
    }
    else if (crc_through(buf + 4, len - 4, &crc) < 0) {
        return -2;
    }
    if (crc != load_le32(buf + AT_CRC)) {
        return -1;
    }
    return (long)value_start;
}

static PyObject *
value_start(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "value_start() takes exactly 2 arguments (%zd given)",
                     nargs);
        return NULL;
    }
    Py_buffer buf;
    Py_buffer key;
    /* PyBUF_SIMPLE: contiguous bytes, as struct.unpack_from in check_put asks for; a
       non-buffer raises the same TypeError there and here. */
    if (PyObject_GetBuffer(args[0], &buf, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &key, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&buf);
        return NULL;
    }
    long result = check(buf.buf, (size_t)buf.len, key.buf, (size_t)key.len);
    /* Released before anything else can run, so that an mmap can be closed or a bytearray
       resized as soon as the call returns, whatever it returned. */
    PyBuffer_Release(&key);
    PyBuffer_Release(&buf);
    if (result == -2) {
        return NULL;
    }
    return PyLong_FromLong(result);
}

/* An offset or size argument of put_value: -1 for one that is negative or beyond any
   buffer's length (the Python function answers None for those too), -2 with an exception
   set for one that is not an int. */
static Py_ssize_t
span_arg(PyObject *arg)
{
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) {
            return -2;
        }
        PyErr_Clear();
    }
    return n < 0 ? -1 : n;
}

static PyObject *
put_value(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "put_value() takes exactly 4 arguments (%zd given)", nargs);
        return NULL;
    }
    Py_ssize_t offset = span_arg(args[1]);
    Py_ssize_t size = offset == -2 ? -2 : span_arg(args[2]);
    if (size == -2) {
        return NULL;
    }
    Py_buffer buf;
    Py_buffer key;
    if (PyObject_GetBuffer(args[0], &buf, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[3], &key, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&buf);
        return NULL;
    }
    PyObject *result = Py_None;
    if (offset >= 0 && size >= 0 && offset <= buf.len && size <= buf.len - offset) {
        const unsigned char *record = (const unsigned char *)buf.buf + offset;
        long start = check(record, (size_t)size, key.buf, (size_t)key.len);
        if (start == -2) {
            result = NULL;
        }
        else if (start > 0) {
            /* Copied while the buffer is still held: a map cannot be closed under the copy. */
            result = PyBytes_FromStringAndSize((const char *)record + start, size - start);
        }
    }
    PyBuffer_Release(&key);
    PyBuffer_Release(&buf);
    return result == Py_None ? Py_NewRef(Py_None) : result;
}

/* The record of one put, its CRC left for later: struct.pack("<BBBBIQd", ...) after the CRC
   field, then the key and the value. The float is stored as its IEEE 754 bits, which is what
   struct's "<d" writes on every platform CPython supports. */
static void
write_put(unsigned char *at, uint64_t seq, PyObject *key, PyObject *value, double expiry,
          unsigned encoding)
{
    Py_ssize_t key_len = PyBytes_GET_SIZE(key);
    Py_ssize_t value_len = PyBytes_GET_SIZE(value);
    uint64_t bits;
    memcpy(&bits, &expiry, sizeof bits);
    at[AT_VERSION] = FORMAT_VERSION;
    at[AT_KIND] = KIND_PUT;
    at[AT_KEY_LEN] = (unsigned char)key_len;
    at[AT_ENCODING] = (unsigned char)encoding;
    store_le32(at + AT_VALUE_LEN, (uint32_t)value_len);
    store_le64(at + AT_SEQ, seq);
    store_le64(at + AT_EXPIRY, bits);
    memcpy(at + HEADER_SIZE, PyBytes_AS_STRING(key), (size_t)key_len);
    memcpy(at + HEADER_SIZE + key_len, PyBytes_AS_STRING(value), (size_t)value_len);
}

/* Whether item i of the four lists is one put encode_put packs: exact bytes of a key of at
   most KEY_LEN_MAX bytes and a value below 2**32 bytes, an exact float, an exact int encoding
   of 0 to 255. */
static int
packable(PyObject *keys, PyObject *values, PyObject *expiries, PyObject *encodings,
         Py_ssize_t i)
{
    PyObject *key = PyList_GET_ITEM(keys, i);
    PyObject *value = PyList_GET_ITEM(values, i);
    PyObject *code = PyList_GET_ITEM(encodings, i);
    long v;
    if (!PyBytes_CheckExact(key) || PyBytes_GET_SIZE(key) > KEY_LEN_MAX ||
        !PyBytes_CheckExact(value) || (uint64_t)PyBytes_GET_SIZE(value) > UINT32_MAX ||
        !PyFloat_CheckExact(PyList_GET_ITEM(expiries, i)) || !PyLong_CheckExact(code)) {
        return 0;
    }
    v = PyLong_AsLong(code);
    if (v < 0 || v > 255) {
        PyErr_Clear(); /* an overflow reads as -1 with an error set: not packable either */
        return 0;
    }
    return 1;
}

static PyObject *
encode_puts(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 5 && nargs != 6) {
        PyErr_Format(PyExc_TypeError, "encode_puts() takes 5 or 6 arguments (%zd given)",
                     nargs);
        return NULL;
    }
    Py_ssize_t headroom = 0;
    if (nargs == 6) {
        headroom = PyLong_Check(args[5]) ? PyLong_AsSsize_t(args[5]) : -1;
        if (headroom < 0 || headroom > 4096) {
            PyErr_Clear();
            Py_RETURN_NONE;
        }
    }
    PyObject *keys = args[1], *values = args[2], *expiries = args[3], *encodings = args[4];
    if (!PyLong_CheckExact(args[0]) || !PyList_CheckExact(keys) || !PyList_CheckExact(values) ||
        !PyList_CheckExact(expiries) || !PyList_CheckExact(encodings)) {
        Py_RETURN_NONE;
    }
    Py_ssize_t count = PyList_GET_SIZE(keys);
    unsigned long long first = PyLong_AsUnsignedLongLong(args[0]);
    if (first == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear(); /* negative or past 64 bits: encode_put's struct.error to raise */
        Py_RETURN_NONE;
    }
    if (PyList_GET_SIZE(values) != count || PyList_GET_SIZE(expiries) != count ||
        PyList_GET_SIZE(encodings) != count ||
        (count > 0 && (unsigned long long)(count - 1) > UINT64_MAX - first)) {
        Py_RETURN_NONE;
    }
    /* Every item checked and the total summed before anything is built. No Python code runs
       from here to the CRCs, so the lists cannot change under the two passes. */
    size_t total = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (!packable(keys, values, expiries, encodings, i)) {
            Py_RETURN_NONE;
        }
        total += HEADER_SIZE + (size_t)PyBytes_GET_SIZE(PyList_GET_ITEM(keys, i)) +
                 (size_t)PyBytes_GET_SIZE(PyList_GET_ITEM(values, i));
        if (total > (size_t)PY_SSIZE_T_MAX - (size_t)headroom) {
            Py_RETURN_NONE;
        }
    }
    PyObject *data = nargs == 5
                         ? PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total)
                         : PyByteArray_FromStringAndSize(NULL, headroom + (Py_ssize_t)total);
    PyObject *sizes = data == NULL ? NULL : PyList_New(count);
    if (sizes == NULL) {
        Py_XDECREF(data);
        return NULL;
    }
    unsigned char *out = nargs == 5 ? (unsigned char *)PyBytes_AS_STRING(data)
                                    : (unsigned char *)PyByteArray_AS_STRING(data);
    memset(out, 0, (size_t)headroom);
    out += headroom;
    size_t at = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *key = PyList_GET_ITEM(keys, i);
        PyObject *value = PyList_GET_ITEM(values, i);
        unsigned encoding = (unsigned)PyLong_AsLong(PyList_GET_ITEM(encodings, i)); /* 0..255 */
        size_t size = HEADER_SIZE + (size_t)PyBytes_GET_SIZE(key) + (size_t)PyBytes_GET_SIZE(value);
        write_put(out + at, (uint64_t)first + (uint64_t)i, key, value,
                  PyFloat_AS_DOUBLE(PyList_GET_ITEM(expiries, i)), encoding);
        PyObject *n = PyLong_FromSize_t(size);
        if (n == NULL) {
            Py_DECREF(sizes);
            Py_DECREF(data);
            return NULL;
        }
        PyList_SET_ITEM(sizes, i, n);
        at += size;
    }
    /* The CRCs last: isal's CRC runs through Python, and data is still ours alone. */
    at = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        size_t size = PyLong_AsSize_t(PyList_GET_ITEM(sizes, i));
        uint32_t crc;
        if (crc_function == NULL) {
            crc = crc_of(out + at + 4, size - 4);
        }
        else if (crc_through(out + at + 4, size - 4, &crc) < 0) {
            Py_DECREF(sizes);
            Py_DECREF(data);
            return NULL;
        }
        store_le32(out + at + AT_CRC, crc);
        at += size;
    }
    PyObject *result = PyTuple_Pack(2, data, sizes);
    Py_DECREF(data);
    Py_DECREF(sizes);
    return result;
}

static PyObject *
use_crc32(PyObject *module, PyObject *function)
{
    (void)module;
    if (function != Py_None && !PyCallable_Check(function)) {
        PyErr_SetString(PyExc_TypeError, "use_crc32() takes a callable or None");
        return NULL;
    }
    Py_XSETREF(crc_function, function == Py_None ? NULL : Py_NewRef(function));
    Py_RETURN_NONE;
}

PyDoc_STRVAR(use_crc32_doc,
             "use_crc32(function, /)\n"
             "--\n"
             "\n"
             "Compute records' CRC-32 with function (called with a memoryview it must not\n"
             "keep), rather than with zlib; None goes back to zlib.");

PyDoc_STRVAR(value_start_doc,
             "value_start(buf, key, /)\n"
             "--\n"
             "\n"
             "Where the value begins in buf if buf is exactly one sound put record of key,\n"
             "with no deadline and in the VALUE_JSON64 encoding; else -1.\n"
             "\n"
             "The behaviour is that of aiokv._bitcask.format.record.value_start_py.");

PyDoc_STRVAR(put_value_doc,
             "put_value(buf, offset, size, key, /)\n"
             "--\n"
             "\n"
             "The value's bytes if buf[offset:offset + size] is a record value_start accepts\n"
             "as a put of key; else None, as it is for a span that is not inside buf.\n"
             "\n"
             "The behaviour is that of aiokv._bitcask.format.record.put_value_py.");

PyDoc_STRVAR(encode_puts_doc,
             "encode_puts(first_seq, keys, values, expiries, encodings, headroom=<none>, /)\n"
             "--\n"
             "\n"
             "(records, sizes): the put records of the batch back to back, numbered from\n"
             "first_seq, and the size of each; None for arguments it does not take (the\n"
             "Python function then encodes them, or raises). Given a headroom (0 to 4096),\n"
             "records is a bytearray with that many zero bytes before the first record.\n"
             "\n"
             "The behaviour is that of aiokv._bitcask.format.record.encode_puts_py.");

static PyMethodDef crecord_methods[] = {
    {"encode_puts", (PyCFunction)(void (*)(void))encode_puts, METH_FASTCALL, encode_puts_doc},
    {"put_value", (PyCFunction)(void (*)(void))put_value, METH_FASTCALL, put_value_doc},
    {"value_start", (PyCFunction)(void (*)(void))value_start, METH_FASTCALL, value_start_doc},
    {"use_crc32", use_crc32, METH_O, use_crc32_doc},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot crecord_slots[] = {
#ifdef Py_mod_multiple_interpreters
    /* crc_function is one object for the process: no interpreter may share it with another. */
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED},
#endif
    {0, NULL},
};

static struct PyModuleDef crecord_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "aiokv._bitcask.format._crecord",
    .m_doc = "The read path's check of a record in C: see aiokv._bitcask.format.record.value_start "
             "and put_value.",
    .m_size = 0,
    .m_methods = crecord_methods,
    .m_slots = crecord_slots,
};

PyMODINIT_FUNC
PyInit__crecord(void)
{
    return PyModuleDef_Init(&crecord_module);
}
