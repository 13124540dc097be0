/*
 * aiokv._bitcask.index._ckeydir: the key directory as a compact hash table.
 *
 * The behaviour is that of PyKeyDir in aiokv/_keydir.py, which is the specification; this
 * type only stores the same mapping (a key's keyed 48-bit hash -> a location) in about 24
 * bytes per key instead of a dict's ~200.
 *
 * The module also has check_entries, the open's check of a hint's entries before they are
 * loaded: aiokv._bitcask.format.hint's check_entries and check_keys in one pass, with no
 * Python object per entry (the format's limits are its arguments).
 *
 * Layout
 * ------
 * One open-addressing table of nslots 16-byte Entry records, probed linearly from a home
 * slot chosen by the hash (any number of slots: the home is a multiply-shift of the hash,
 * not a mask, so the table grows by less than doubling). Beside it, one control byte a
 * slot: EMPTY, DELETED, or a 7-bit tag of the hash. A lookup scans control bytes, which are
 * a sixteenth of the table and stay in cache, and reads an entry only where the tag
 * matches: with a million keys that is one cache miss a lookup (the entry, holding hash
 * and location together), where an index of entry numbers beside a dense entry array made
 * two. Slots are never more than seven eighths used or deleted, so a probe always ends;
 * a growing table is rebuilt at about 1.6 times its entries (from its stored hashes,
 * without the keys), so it holds 19 to 27 bytes a key, and a table loaded in bulk (a
 * store's open) about 24. A deletion leaves a DELETED mark only where a probe may need to
 * pass it; a rebuild drops them all.
 *
 * A location is segment << 48 | offset << 16 | size with segment and offset below 2**32 and
 * size below 2**16: any integer in [0, 2**80). It is stored split as
 * hash_size = hash << 16 | size and seg_off = segment << 32 | offset.
 *
 * Threads: every method runs with the GIL held from start to end and never calls back into
 * Python code, nor creates a Python object, between its first change to the table and its
 * last, so a reader in another thread sees each change whole. Python results are built
 * before the change (put's and pop's old location) or after it (load's tuple).
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define HASH_BITS 48
#define KIND_PUT 1
#define KIND_DELETE 2
#define KEY_END 0xFF
#define BATCH_SIZE 40 /* a batch record: format.record.BATCH_SIZE */

#define CTRL_EMPTY 0x80u
#define CTRL_DELETED 0xFEu
#define MIN_SLOTS ((size_t)8)
/* The home slot is (32 bits of the hash) * nslots >> 32, so nslots stays below 2**32; seven
   eighths of 2**31, about 1.9e9 keys, is the most a directory holds. */
#define MAX_SLOTS ((size_t)1 << 31)
#define MAX_ENTRIES (MAX_SLOTS / 8 * 7)

typedef struct {
    uint64_t hash_size; /* hash << 16 | size */
    uint64_t seg_off;   /* segment << 32 | offset */
} Entry;

typedef struct {
    PyObject_HEAD
    uint64_t k0, k1;     /* SipHash key: the seed as two little-endian words */
    uint64_t hash_mask;  /* (1 << hash_bits) - 1 */
    Entry *entries;      /* nslots entries, valid where ctrl holds a tag */
    uint8_t *ctrl;       /* nslots control bytes: CTRL_EMPTY, CTRL_DELETED or a tag */
    size_t nslots;
    size_t used;         /* live entries, == len() */
    size_t fill;         /* slots not empty: live plus deleted */
} KeyDirObject;

/* ---------------------------------------------------------------- SipHash-1-3 */

static inline uint64_t
load_le64(const unsigned char *p)
{
#if PY_LITTLE_ENDIAN
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
#else
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
           (uint64_t)p[7] << 56;
#endif
}

#define ROTL64(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND                                                                           \
    do {                                                                                   \
        v0 += v1;                                                                          \
        v1 = ROTL64(v1, 13);                                                               \
        v1 ^= v0;                                                                          \
        v0 = ROTL64(v0, 32);                                                               \
        v2 += v3;                                                                          \
        v3 = ROTL64(v3, 16);                                                               \
        v3 ^= v2;                                                                          \
        v0 += v3;                                                                          \
        v3 = ROTL64(v3, 21);                                                               \
        v3 ^= v0;                                                                          \
        v2 += v1;                                                                          \
        v1 = ROTL64(v1, 17);                                                               \
        v1 ^= v2;                                                                          \
        v2 = ROTL64(v2, 32);                                                               \
    } while (0)

/* One compression round per 8-byte word, three finalisation rounds: the variant CPython
   uses for str and bytes since 3.11, ample for a table whose keys come from clients, and
   nearly twice as fast as SipHash-2-4 on short keys. */
static uint64_t
siphash13(uint64_t k0, uint64_t k1, const unsigned char *p, size_t n)
{
    uint64_t v0 = k0 ^ 0x736f6d6570736575ULL;
    uint64_t v1 = k1 ^ 0x646f72616e646f6dULL;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ULL;
    uint64_t v3 = k1 ^ 0x7465646279746573ULL;
    const unsigned char *end = p + (n & ~(size_t)7);
    uint64_t m;
    size_t i;

    for (; p != end; p += 8) {
        m = load_le64(p);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    /* The last word: the remaining bytes, and the length's low byte on top. */
    m = (uint64_t)n << 56;
    for (i = 0; i < (n & 7); i++) {
        m |= (uint64_t)p[i] << (8 * i);
    }
    v3 ^= m;
    SIPROUND;
    v0 ^= m;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

static inline uint64_t
kd_hash_bytes(const KeyDirObject *kd, const char *p, size_t n)
{
    return siphash13(kd->k0, kd->k1, (const unsigned char *)p, n) & kd->hash_mask;
}

/* The hash of a key object, or -1 (with TypeError set) if it is not exactly bytes (as in
   PyKeyDir: a subclass could compare equal to keys it does not hash like). A valid hash is
   below 2**48, so -1 cannot be one. */
static inline int64_t
kd_hash_key(const KeyDirObject *kd, PyObject *key)
{
    if (!PyBytes_CheckExact(key)) {
        PyErr_Format(PyExc_TypeError, "a key is bytes, not %.200s", Py_TYPE(key)->tp_name);
        return -1;
    }
    return (int64_t)kd_hash_bytes(kd, PyBytes_AS_STRING(key), (size_t)PyBytes_GET_SIZE(key));
}

/* ---------------------------------------------------------------- locations */

static inline void
entry_set(Entry *e, uint64_t h, uint64_t lo, uint64_t hi)
{
    /* lo and hi are the location's low 64 bits and the rest (below 2**16). */
    uint64_t size = lo & 0xFFFF;
    uint64_t offset = (lo >> 16) & 0xFFFFFFFFu;
    uint64_t segment = lo >> 48 | hi << 16;
    e->hash_size = h << 16 | size;
    e->seg_off = segment << 32 | offset;
}

static inline uint64_t
entry_hash(const Entry *e)
{
    return e->hash_size >> 16;
}

/* The location of an entry as a Python int. */
static PyObject *
location_to_int(const Entry *e)
{
    uint64_t segment = e->seg_off >> 32;
    uint64_t lo = segment << 48 | (e->seg_off & 0xFFFFFFFFu) << 16 | (e->hash_size & 0xFFFF);
    uint64_t hi = segment >> 16;
    PyObject *high, *shift, *shifted, *low, *result;

    if (hi == 0) {
        return PyLong_FromUnsignedLongLong(lo);
    }
    /* Segments from 65536 up: the location is wider than 64 bits. All operands are exact
       ints, so no Python code runs. */
    high = PyLong_FromUnsignedLongLong(hi);
    if (high == NULL) {
        return NULL;
    }
    shift = PyLong_FromLong(64);
    if (shift == NULL) {
        Py_DECREF(high);
        return NULL;
    }
    shifted = PyNumber_Lshift(high, shift);
    Py_DECREF(high);
    Py_DECREF(shift);
    if (shifted == NULL) {
        return NULL;
    }
    low = PyLong_FromUnsignedLongLong(lo);
    if (low == NULL) {
        Py_DECREF(shifted);
        return NULL;
    }
    result = PyNumber_Or(shifted, low);
    Py_DECREF(shifted);
    Py_DECREF(low);
    return result;
}

static int
bad_location(PyObject *obj)
{
    PyErr_Format(PyExc_ValueError, "not a location: %S", obj);
    return -1;
}

/* Split an int in [0, 2**80) into its low 64 bits and the rest; ValueError outside that
   range, TypeError for a non-int. Touches nothing but the object, so callers run it before
   they change the table. */
static int
location_from_int(PyObject *obj, uint64_t *lo, uint64_t *hi)
{
    int overflow;
    long long small;
    PyObject *shift, *high;
    unsigned long long top;

    if (!PyLong_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "location must be int, not %.200s", Py_TYPE(obj)->tp_name);
        return -1;
    }
    small = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (overflow == 0) {
        if (small == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (small < 0) {
            return bad_location(obj);
        }
        *lo = (uint64_t)small;
        *hi = 0;
        return 0;
    }
    if (overflow < 0) {
        return bad_location(obj);
    }
    *lo = (uint64_t)PyLong_AsUnsignedLongLongMask(obj);
    if (*lo == (uint64_t)-1 && PyErr_Occurred()) {
        return -1;
    }
    /* int's own shift, not the type's: a subclass's __rshift__ is Python code. */
    shift = PyLong_FromLong(64);
    if (shift == NULL) {
        return -1;
    }
    high = PyLong_Type.tp_as_number->nb_rshift(obj, shift);
    Py_DECREF(shift);
    if (high == NULL) {
        return -1;
    }
    top = PyLong_AsUnsignedLongLong(high);
    Py_DECREF(high);
    if (top == (unsigned long long)-1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) {
            return -1;
        }
        PyErr_Clear();
        return bad_location(obj);
    }
    if (top > 0xFFFF) {
        return bad_location(obj);
    }
    *hi = (uint64_t)top;
    return 0;
}

/* ---------------------------------------------------------------- the table */

/* The hash spread over 64 bits: its high half picks the home slot, bits 25..31 the tag, so
   keys sharing a neighbourhood of slots rarely share a tag too. */
static inline uint64_t
kd_mix(uint64_t h)
{
    return h * 0x9E3779B97F4A7C15ULL;
}

static inline size_t
kd_home(size_t nslots, uint64_t m)
{
    return (size_t)(((m >> 32) * (uint64_t)nslots) >> 32);
}

static inline uint8_t
kd_tag(uint64_t m)
{
    return (uint8_t)((m >> 25) & 0x7F);
}

/* The slot holding hash h (its entry is entries[slot]), or -1. *free_slot (when given) gets
   the first empty or deleted slot on h's probe sequence, where h goes if absent. */
static inline Py_ssize_t
kd_find(const KeyDirObject *kd, uint64_t h, size_t *free_slot)
{
    const uint8_t *ctrl = kd->ctrl;
    const size_t nslots = kd->nslots;
    const uint64_t m = kd_mix(h);
    const uint8_t tag = kd_tag(m);
    size_t i = kd_home(nslots, m);
    int have_free = 0;

    for (;;) {
        uint8_t c = ctrl[i];
        if (c == tag) {
            if (entry_hash(&kd->entries[i]) == h) {
                return (Py_ssize_t)i;
            }
        }
        else if (c == CTRL_EMPTY) {
            if (free_slot != NULL && !have_free) {
                *free_slot = i;
            }
            return -1;
        }
        else if (c == CTRL_DELETED && free_slot != NULL && !have_free) {
            *free_slot = i;
            have_free = 1;
        }
        if (++i == nslots) {
            i = 0;
        }
    }
}

#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)(p))
#endif

#define LOOKAHEAD 16 /* a power of two */

/* Put entry *e (its hash absent) into the first empty slot of its probe sequence in the
   given arrays, which hold no deleted slot. */
static inline void
place_entry(Entry *entries, uint8_t *ctrl, size_t nslots, const Entry *e)
{
    uint64_t m = kd_mix(entry_hash(e));
    size_t i = kd_home(nslots, m);
    while (ctrl[i] != CTRL_EMPTY) {
        if (++i == nslots) {
            i = 0;
        }
    }
    ctrl[i] = kd_tag(m);
    entries[i] = *e;
}

/* Re-index every entry into new arrays of nslots slots (at least enough for them at seven
   eighths). Returns -1 without setting an exception if it cannot allocate, the table being
   unchanged then. */
static int
kd_rebuild(KeyDirObject *kd, size_t nslots)
{
    Entry *entries;
    uint8_t *ctrl;
    size_t i, seen = 0;
    /* The next live slots of the old table, whose new homes are being fetched: with a
       million keys each placement is a cache miss, and this lets several overlap. */
    size_t ring[LOOKAHEAD];
    size_t queued = 0, ahead = 0;

    if (nslots > MAX_SLOTS || (uint64_t)kd->used * 8 > (uint64_t)nslots * 7) {
        return -1;
    }
    entries = PyMem_Malloc(nslots * sizeof(Entry));
    ctrl = PyMem_Malloc(nslots);
    if (entries == NULL || ctrl == NULL) {
        PyMem_Free(entries);
        PyMem_Free(ctrl);
        return -1;
    }
    memset(ctrl, CTRL_EMPTY, nslots);
    for (i = 0; i < kd->nslots || queued > 0;) {
        /* Queue live slots until LOOKAHEAD are in flight or the old table is done. */
        while (i < kd->nslots && queued < LOOKAHEAD) {
            if (kd->ctrl[i] < CTRL_EMPTY) {
                uint64_t m = kd_mix(entry_hash(&kd->entries[i]));
                size_t home = kd_home(nslots, m);
                PREFETCH(&ctrl[home]);
                PREFETCH(&entries[home]);
                ring[(ahead + queued) & (LOOKAHEAD - 1)] = i;
                queued++;
            }
            i++;
        }
        if (queued == 0) {
            break;
        }
        place_entry(entries, ctrl, nslots, &kd->entries[ring[ahead & (LOOKAHEAD - 1)]]);
        ahead++;
        queued--;
        seen++;
    }
    assert(seen == kd->used);
    (void)seen;
    PyMem_Free(kd->entries);
    PyMem_Free(kd->ctrl);
    kd->entries = entries;
    kd->ctrl = ctrl;
    kd->nslots = nslots;
    kd->fill = kd->used;
    return 0;
}

/* The slots that hold `entries` at about seven tenths full. */
static size_t
slots_for(uint64_t entries)
{
    uint64_t n = entries + (entries * 3 + 6) / 7;
    if (n < MIN_SLOTS) {
        return MIN_SLOTS;
    }
    return n > MAX_SLOTS ? MAX_SLOTS : (size_t)n;
}

/* Make room to add `extra` entries with no further allocation. Returns -1 without setting
   an exception on failure, the table being unchanged then. */
static int
kd_reserve(KeyDirObject *kd, size_t extra)
{
    uint64_t need, nslots, grown;

    if (extra > MAX_ENTRIES - kd->used) {
        return -1;
    }
    if (((uint64_t)kd->fill + extra) * 8 <= (uint64_t)kd->nslots * 7) {
        return 0;
    }
    need = (uint64_t)kd->used + extra;
    /* At seven tenths full for what is asked; for a table growing one entry at a time, at
       least 1.6 times its entries, so that a rebuild (a pass over every entry) comes once
       per 0.4 entries added for each already there. Deleted slots are dropped on the way. */
    nslots = slots_for(need);
    grown = (uint64_t)kd->used + (uint64_t)kd->used * 3 / 5;
    if (grown > nslots && kd->fill - kd->used < kd->nslots / 8) {
        nslots = grown;
    }
    if (need * 8 > (uint64_t)MAX_SLOTS * 7) {
        return -1;
    }
    if (nslots > MAX_SLOTS) {
        nslots = MAX_SLOTS;
    }
    return kd_rebuild(kd, (size_t)nslots);
}

/* Add an entry for hash h, known absent, at free slot `at` (from kd_find, with the room
   kd_reserve made since). */
static inline void
kd_insert_at(KeyDirObject *kd, size_t at, uint64_t h, uint64_t lo, uint64_t hi)
{
    entry_set(&kd->entries[at], h, lo, hi);
    if (kd->ctrl[at] == CTRL_EMPTY) {
        kd->fill++;
    }
    kd->ctrl[at] = kd_tag(kd_mix(h));
    kd->used++;
}

static inline int
kd_needs_room(const KeyDirObject *kd)
{
    return ((uint64_t)kd->fill + 1) * 8 > (uint64_t)kd->nslots * 7;
}

/* Give back memory once the table is mostly empty. Best effort: failing to allocate the
   smaller arrays leaves the larger ones, which is still correct. */
static void
kd_maybe_shrink(KeyDirObject *kd)
{
    if (kd->nslots > MIN_SLOTS && kd->used * 8 < kd->nslots) {
        /* Half full after: as many more adds as there are entries before it grows again. */
        (void)kd_rebuild(kd, slots_for(((uint64_t)kd->used * 2 * 7 + 9) / 10));
    }
}

/* Remove the entry at slot `at`. Its slot is left DELETED only if a probe may have to pass
   it: if the next slot is empty, no probe goes on past this one, which becomes empty too,
   and so may the deleted ones just before it. */
static void
kd_remove(KeyDirObject *kd, size_t at)
{
    uint8_t *ctrl = kd->ctrl;
    const size_t nslots = kd->nslots;
    size_t next = at + 1 == nslots ? 0 : at + 1;

    kd->used--;
    if (ctrl[next] != CTRL_EMPTY) {
        ctrl[at] = CTRL_DELETED;
    }
    else {
        size_t i = at;
        ctrl[i] = CTRL_EMPTY;
        kd->fill--;
        for (;;) {
            i = i == 0 ? nslots - 1 : i - 1;
            if (ctrl[i] != CTRL_DELETED) {
                break;
            }
            ctrl[i] = CTRL_EMPTY;
            kd->fill--;
        }
    }
    kd_maybe_shrink(kd);
}

/* ---------------------------------------------------------------- arguments */

/* Positional-or-keyword arguments for a METH_FASTCALL | METH_KEYWORDS method: out[] gets
   them by name; the first `required` must be given. */
static int
parse_args(const char *fname, const char *const *names, Py_ssize_t nnames, Py_ssize_t required,
           PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, PyObject **out)
{
    Py_ssize_t i, j, nkw;

    if (nargs > nnames) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %zd arguments (%zd given)", fname,
                     nnames, nargs);
        return -1;
    }
    for (i = 0; i < nnames; i++) {
        out[i] = i < nargs ? args[i] : NULL;
    }
    nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (i = 0; i < nkw; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i);
        for (j = 0; j < nnames; j++) {
            if (PyUnicode_CompareWithASCIIString(name, names[j]) == 0) {
                break;
            }
        }
        if (j == nnames) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", fname,
                         name);
            return -1;
        }
        if (out[j] != NULL) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", fname,
                         names[j]);
            return -1;
        }
        out[j] = args[nargs + i];
    }
    for (i = 0; i < required; i++) {
        if (out[i] == NULL) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s' (pos %zd)", fname,
                         names[i], i + 1);
            return -1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- methods */

static PyObject *
KeyDir_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"seed", "hash_bits", NULL};
    PyObject *seed, *bits_obj = NULL;
    Py_buffer view;
    uint64_t k0, k1;
    long long hash_bits = HASH_BITS;
    KeyDirObject *kd;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:KeyDir", kwlist, &seed, &bits_obj)) {
        return NULL;
    }
    if (PyObject_GetBuffer(seed, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (view.len != 16) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "seed must be 16 bytes");
        return NULL;
    }
    k0 = load_le64((const unsigned char *)view.buf);
    k1 = load_le64((const unsigned char *)view.buf + 8);
    PyBuffer_Release(&view);
    if (bits_obj != NULL) {
        int overflow;
        if (!PyLong_Check(bits_obj)) {
            PyErr_Format(PyExc_TypeError, "hash_bits must be int, not %.200s",
                         Py_TYPE(bits_obj)->tp_name);
            return NULL;
        }
        hash_bits = PyLong_AsLongLongAndOverflow(bits_obj, &overflow);
        if (hash_bits == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (overflow != 0) {
            hash_bits = 0;
        }
    }
    if (hash_bits < 1 || hash_bits > HASH_BITS) {
        PyErr_Format(PyExc_ValueError, "hash_bits must be from 1 to %d", HASH_BITS);
        return NULL;
    }

    kd = (KeyDirObject *)type->tp_alloc(type, 0);
    if (kd == NULL) {
        return NULL;
    }
    kd->k0 = k0;
    kd->k1 = k1;
    kd->hash_mask = ((uint64_t)1 << hash_bits) - 1;
    kd->entries = NULL;
    kd->ctrl = NULL;
    kd->nslots = 0;
    kd->used = 0;
    kd->fill = 0;
    if (kd_rebuild(kd, MIN_SLOTS) < 0) {
        Py_DECREF(kd);
        return PyErr_NoMemory();
    }
    return (PyObject *)kd;
}

static void
KeyDir_dealloc(KeyDirObject *kd)
{
    PyTypeObject *tp = Py_TYPE(kd);
    PyMem_Free(kd->entries);
    PyMem_Free(kd->ctrl);
    tp->tp_free((PyObject *)kd);
    Py_DECREF(tp);
}

static const char *const key_names[] = {"key"};

static inline PyObject *
one_key(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *key;
    if (nargs == 1 && kwnames == NULL) {
        return args[0];
    }
    if (parse_args(fname, key_names, 1, 1, args, nargs, kwnames, &key) < 0) {
        return NULL;
    }
    return key;
}

PyDoc_STRVAR(KeyDir_hash_doc, "hash($self, /, key)\n--\n\n"
                              "The key's keyed hash (SipHash-1-3), cut to hash_bits bits.");

static PyObject *
KeyDir_hash(KeyDirObject *kd, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *key = one_key("hash", args, nargs, kwnames);
    int64_t h;
    if (key == NULL) {
        return NULL;
    }
    h = kd_hash_key(kd, key);
    if (h < 0) {
        return NULL;
    }
    return PyLong_FromUnsignedLongLong((unsigned long long)h);
}

PyDoc_STRVAR(KeyDir_get_doc, "get($self, /, key)\n--\n\n"
                             "The location stored for the key's hash, or None.");

/* The slot of the one key in args (get's and pop's argument); -1 if the key's hash is
   absent; -2 with an exception set for a bad argument. */
static Py_ssize_t
find_key(KeyDirObject *kd, const char *fname, PyObject *const *args, Py_ssize_t nargs,
         PyObject *kwnames)
{
    PyObject *key = one_key(fname, args, nargs, kwnames);
    int64_t h;
    if (key == NULL) {
        return -2;
    }
    h = kd_hash_key(kd, key);
    if (h < 0) {
        return -2;
    }
    return kd_find(kd, (uint64_t)h, NULL);
}

static PyObject *
KeyDir_get(KeyDirObject *kd, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    Py_ssize_t e = find_key(kd, "get", args, nargs, kwnames);
    if (e == -2) {
        return NULL;
    }
    if (e < 0) {
        Py_RETURN_NONE;
    }
    return location_to_int(&kd->entries[e]);
}

PyDoc_STRVAR(KeyDir_put_doc, "put($self, /, key, loc)\n--\n\n"
                             "Store loc for the key's hash; return the location it replaces, or "
                             "None.");

static PyObject *
KeyDir_put(KeyDirObject *kd, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"key", "loc"};
    PyObject *argv[2], *old;
    uint64_t lo, hi;
    int64_t h;
    Py_ssize_t e;
    size_t free_slot = 0;

    if (nargs == 2 && kwnames == NULL) {
        argv[0] = args[0];
        argv[1] = args[1];
    }
    else if (parse_args("put", names, 2, 2, args, nargs, kwnames, argv) < 0) {
        return NULL;
    }
    /* The location is checked first, as PyKeyDir does. */
    if (location_from_int(argv[1], &lo, &hi) < 0) {
        return NULL;
    }
    h = kd_hash_key(kd, argv[0]);
    if (h < 0) {
        return NULL;
    }
    e = kd_find(kd, (uint64_t)h, &free_slot);
    if (e >= 0) {
        old = location_to_int(&kd->entries[e]);
        if (old == NULL) {
            return NULL;
        }
        entry_set(&kd->entries[e], (uint64_t)h, lo, hi);
        return old;
    }
    if (kd_needs_room(kd)) {
        if (kd_reserve(kd, 1) < 0) {
            return PyErr_NoMemory();
        }
        /* A rebuild moved everything; find the free slot again. */
        (void)kd_find(kd, (uint64_t)h, &free_slot);
    }
    kd_insert_at(kd, free_slot, (uint64_t)h, lo, hi);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(KeyDir_pop_doc, "pop($self, /, key)\n--\n\n"
                             "Remove the key's hash; return the location it had, or None.");

static PyObject *
KeyDir_pop(KeyDirObject *kd, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *old;
    Py_ssize_t e = find_key(kd, "pop", args, nargs, kwnames);
    if (e == -2) {
        return NULL;
    }
    if (e < 0) {
        Py_RETURN_NONE;
    }
    old = location_to_int(&kd->entries[e]);
    if (old == NULL) {
        return NULL;
    }
    kd_remove(kd, (size_t)e);
    return old;
}

/* An argument of load(): a C-contiguous one-dimensional buffer of native unsigned integers
   of `itemsize` bytes (array('B') or bytes for 1, array('I') for 4). */
static int
get_column(PyObject *obj, const char *name, Py_ssize_t itemsize, Py_buffer *view)
{
    const char *fmt;
    char code;
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        if (PyErr_ExceptionMatches(PyExc_BufferError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "%s must be a contiguous buffer", name);
        }
        return -1;
    }
    fmt = view->format == NULL ? "B" : view->format;
    if (fmt[0] == '@') {
        fmt++;
    }
    code = fmt[0] != '\0' && fmt[1] == '\0' ? fmt[0] : '\0';
    if (view->ndim != 1 || view->itemsize != itemsize ||
        !(itemsize == 1 ? code == 'B' : (code == 'I' || code == 'L'))) {
        PyErr_Format(PyExc_TypeError, "%s must be a buffer of format '%s', not '%s' of %zd bytes",
                     name, itemsize == 1 ? "B" : "I", view->format == NULL ? "B" : view->format,
                     view->itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* A non-negative int argument as Py_ssize_t; larger than that reads as -1 (out of range
   for every use here, as it is for PyKeyDir). */
static int
index_arg(PyObject *obj, const char *name, long long *out)
{
    int overflow;
    long long v;
    if (!PyLong_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be int, not %.200s", name, Py_TYPE(obj)->tp_name);
        return -1;
    }
    v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    *out = overflow != 0 || v < 0 ? -1 : v;
    return 0;
}

/* Hash load()'s entry *ahead (its key at *ahead_pos) into ring[] and start fetching its
   home slot; -1 (and nothing done) if its key is malformed. */
static inline int
look_ahead(const KeyDirObject *kd, const unsigned char *keys, Py_ssize_t nkeys,
           const unsigned char *lengths, uint64_t *ring, Py_ssize_t *ahead, Py_ssize_t *ahead_pos)
{
    Py_ssize_t length = lengths[*ahead];
    Py_ssize_t end = *ahead_pos + length;
    uint64_t h;
    size_t home;
    if (end >= nkeys || keys[end] != KEY_END) {
        return -1;
    }
    h = kd_hash_bytes(kd, (const char *)keys + *ahead_pos, (size_t)length);
    ring[*ahead & (LOOKAHEAD - 1)] = h;
    home = kd_home(kd->nslots, kd_mix(h));
    PREFETCH(&kd->ctrl[home]);
    PREFETCH(&kd->entries[home]); /* where it goes, if its hash is new */
    *ahead += 1;
    *ahead_pos = end + 1;
    return 0;
}

PyDoc_STRVAR(
    KeyDir_load_doc,
    "load($self, /, keys, lengths, kinds, offsets, sizes, segment, start, pos)\n--\n\n"
    "Apply a hint's entries from `start` (whose key begins at `pos` in `keys`).\n\n"
    "A put of a key whose hash is absent is added; a delete of one is skipped. The first\n"
    "entry whose key's hash is present stops the load. Returns (stop, pos, added,\n"
    "added_key_bytes, added_size). `keys` is bytes (or a memoryview of bytes), each key\n"
    "followed by 0xFF; `lengths` and `kinds` are array('B'), `offsets` and `sizes`\n"
    "array('I').\n\n"
    "ValueError for a malformed entry (its key not ending in 0xFF where its length says,\n"
    "an unknown kind, a location out of range): the entries before it stay applied, each\n"
    "whole, as with PyKeyDir.");

static PyObject *
KeyDir_load(KeyDirObject *kd, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"keys",  "lengths", "kinds", "offsets",
                                        "sizes", "segment", "start", "pos"};
    PyObject *argv[8];
    PyObject *segment_obj, *result = NULL;
    Py_buffer keys_v, lengths_v, kinds_v, offsets_v, sizes_v;
    int have = 0; /* buffers acquired, to release */
    const unsigned char *keys, *lengths, *kinds;
    const uint32_t *offsets, *sizes;
    Py_ssize_t nkeys, count, i, pos;
    long long start_ll, pos_ll, segment_ll;
    int segment_ok, overflow;
    uint64_t segment = 0;
    Py_ssize_t added = 0, added_key_bytes = 0;
    unsigned long long added_size = 0;
    uint64_t ring[LOOKAHEAD];
    Py_ssize_t ahead, ahead_pos;

    if (parse_args("load", names, 8, 8, args, nargs, kwnames, argv) < 0) {
        return NULL;
    }
    segment_obj = argv[5];
    /* keys: bytes, or a memoryview of the hint file's bytes. Holding the buffer keeps the
       memory where it is (an mmap cannot be closed, a bytearray resized) until the end. */
    if (get_column(argv[0], "keys", 1, &keys_v) < 0) {
        return NULL;
    }
    have = 1;
    if (get_column(argv[1], "lengths", 1, &lengths_v) < 0) {
        goto done;
    }
    have = 2;
    if (get_column(argv[2], "kinds", 1, &kinds_v) < 0) {
        goto done;
    }
    have = 3;
    if (get_column(argv[3], "offsets", 4, &offsets_v) < 0) {
        goto done;
    }
    have = 4;
    if (get_column(argv[4], "sizes", 4, &sizes_v) < 0) {
        goto done;
    }
    have = 5;

    count = kinds_v.len;
    if (lengths_v.len != count || offsets_v.len / 4 != count || sizes_v.len / 4 != count) {
        PyErr_SetString(PyExc_ValueError, "columns of different lengths");
        goto done;
    }
    nkeys = keys_v.len;
    if (index_arg(argv[6], "start", &start_ll) < 0 || index_arg(argv[7], "pos", &pos_ll) < 0) {
        goto done;
    }
    if (start_ll < 0 || start_ll > count || pos_ll < 0 || pos_ll > nkeys) {
        PyErr_SetString(PyExc_ValueError, "start or pos out of range");
        goto done;
    }
    if (!PyLong_Check(segment_obj)) {
        PyErr_Format(PyExc_TypeError, "segment must be int, not %.200s",
                     Py_TYPE(segment_obj)->tp_name);
        goto done;
    }
    /* A segment out of range is an error only at the first put that would be added, as in
       PyKeyDir, where that is where the location is checked. */
    segment_ll = PyLong_AsLongLongAndOverflow(segment_obj, &overflow);
    if (segment_ll == -1 && PyErr_Occurred()) {
        goto done;
    }
    segment_ok = overflow == 0 && segment_ll >= 0 && segment_ll <= 0xFFFFFFFFLL;
    if (segment_ok) {
        segment = (uint64_t)segment_ll;
    }

    keys = (const unsigned char *)keys_v.buf;
    lengths = (const unsigned char *)lengths_v.buf;
    kinds = (const unsigned char *)kinds_v.buf;
    offsets = (const uint32_t *)offsets_v.buf;
    sizes = (const uint32_t *)sizes_v.buf;
    i = (Py_ssize_t)start_ll;
    pos = (Py_ssize_t)pos_ll;

    /* Room for every remaining entry at once, so a large hint costs one index rebuild, not
       one per doubling. An upper bound (deletes and stops add nothing); a failure here only
       means growing as we go. */
    if (count > i) {
        (void)kd_reserve(kd, (size_t)(count - i));
    }

    /* Entries [i, ahead) are hashed already, ring[] holding their hashes, and their slots
       are being fetched: with a million keys each probe of the index is a cache miss, and
       this lets several of them overlap. Only well-formed entries are hashed ahead; the
       loop below finds and reports a malformed one in its turn. */
    ahead = i;
    ahead_pos = pos;
    while (ahead < count && ahead < i + LOOKAHEAD &&
           look_ahead(kd, keys, nkeys, lengths, ring, &ahead, &ahead_pos) == 0) {
    }

    for (; i < count; i++) {
        Py_ssize_t length = lengths[i];
        Py_ssize_t end = pos + length;
        unsigned kind = kinds[i];
        uint64_t h;
        size_t free_slot = 0;

        if (end >= nkeys || keys[end] != KEY_END) {
            PyErr_Format(PyExc_ValueError, "entry %zd: its key does not end where its length says",
                         i);
            goto done;
        }
        if (kind != KIND_PUT && kind != KIND_DELETE) {
            PyErr_Format(PyExc_ValueError, "entry %zd: unknown kind %u", i, kind);
            goto done;
        }
        if (i < ahead) {
            h = ring[i & (LOOKAHEAD - 1)];
            if (ahead < count) {
                (void)look_ahead(kd, keys, nkeys, lengths, ring, &ahead, &ahead_pos);
            }
        }
        else {
            h = kd_hash_bytes(kd, (const char *)keys + pos, (size_t)length);
        }
        if (kd_find(kd, h, &free_slot) >= 0) {
            break;
        }
        if (kind == KIND_PUT) {
            uint64_t size = sizes[i];
            /* segment << 48 | offset << 16 | size, as PyKeyDir builds it: a size of 2**16 or
               more spills into the offset's bits rather than being refused. */
            uint64_t lo = segment << 48 | (uint64_t)offsets[i] << 16 | size;
            if (!segment_ok) {
                PyErr_Format(PyExc_ValueError, "entry %zd: not a location: segment %S", i,
                             segment_obj);
                goto done;
            }
            if (kd_needs_room(kd)) {
                if (kd_reserve(kd, 1) < 0) {
                    PyErr_NoMemory();
                    goto done;
                }
                (void)kd_find(kd, h, &free_slot);
            }
            kd_insert_at(kd, free_slot, h, lo, segment >> 16);
            added++;
            added_key_bytes += length;
            added_size += size;
        }
        pos = end + 1;
    }
    result = Py_BuildValue("(nnnnK)", i, pos, added, added_key_bytes, added_size);

done:
    if (have >= 5) {
        PyBuffer_Release(&sizes_v);
    }
    if (have >= 4) {
        PyBuffer_Release(&offsets_v);
    }
    if (have >= 3) {
        PyBuffer_Release(&kinds_v);
    }
    if (have >= 2) {
        PyBuffer_Release(&lengths_v);
    }
    if (have >= 1) {
        PyBuffer_Release(&keys_v);
    }
    return result;
}

PyDoc_STRVAR(KeyDir_locations_doc, "locations($self, /)\n--\n\n"
                                   "Every entry's location, in no particular order.");

static PyObject *
KeyDir_locations(KeyDirObject *kd, PyObject *Py_UNUSED(ignored))
{
    for (;;) {
        size_t n = kd->used, i, e = 0;
        /* Creating the list may run the cyclic GC, and so finalizers and other threads,
           which may change the table: take its size again once the list exists. The ints
           made below are not tracked by the GC, so nothing runs while they are filled in. */
        PyObject *list = PyList_New((Py_ssize_t)n);
        if (list == NULL) {
            return NULL;
        }
        if (kd->used != n) {
            Py_DECREF(list);
            continue;
        }
        for (i = 0; e < n; i++) {
            PyObject *loc;
            if (kd->ctrl[i] >= CTRL_EMPTY) {
                continue;
            }
            loc = location_to_int(&kd->entries[i]);
            if (loc == NULL) {
                Py_DECREF(list);
                return NULL;
            }
            PyList_SET_ITEM(list, (Py_ssize_t)e, loc);
            e++;
        }
        return list;
    }
}

PyDoc_STRVAR(KeyDir_sizeof_doc, "__sizeof__($self, /)\n--\n\n"
                                "Size of the object and its tables, in bytes.");

static PyObject *
KeyDir_sizeof(KeyDirObject *kd, PyObject *Py_UNUSED(ignored))
{
    size_t n = (size_t)Py_TYPE(kd)->tp_basicsize + kd->nslots * (sizeof(Entry) + 1);
    return PyLong_FromSize_t(n);
}

static Py_ssize_t
KeyDir_len(KeyDirObject *kd)
{
    return (Py_ssize_t)kd->used;
}

static PyMethodDef KeyDir_methods[] = {
    {"hash", (PyCFunction)(void (*)(void))KeyDir_hash, METH_FASTCALL | METH_KEYWORDS,
     KeyDir_hash_doc},
    {"get", (PyCFunction)(void (*)(void))KeyDir_get, METH_FASTCALL | METH_KEYWORDS,
     KeyDir_get_doc},
    {"put", (PyCFunction)(void (*)(void))KeyDir_put, METH_FASTCALL | METH_KEYWORDS,
     KeyDir_put_doc},
    {"pop", (PyCFunction)(void (*)(void))KeyDir_pop, METH_FASTCALL | METH_KEYWORDS,
     KeyDir_pop_doc},
    {"load", (PyCFunction)(void (*)(void))KeyDir_load, METH_FASTCALL | METH_KEYWORDS,
     KeyDir_load_doc},
    {"locations", (PyCFunction)KeyDir_locations, METH_NOARGS, KeyDir_locations_doc},
    {"__sizeof__", (PyCFunction)KeyDir_sizeof, METH_NOARGS, KeyDir_sizeof_doc},
    {NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(KeyDir_doc,
             "KeyDir(seed, hash_bits=48)\n--\n\n"
             "A key's keyed hash -> the location of its record, with no key held.\n\n"
             "seed: 16 bytes, the SipHash key. hash_bits: bits of the hash kept, 1 to 48.\n"
             "The behaviour is that of aiokv._bitcask.index.keydir.PyKeyDir.");

static PyType_Slot KeyDir_slots[] = {
    {Py_tp_new, (void *)KeyDir_new},
    {Py_tp_dealloc, (void *)KeyDir_dealloc},
    {Py_tp_methods, KeyDir_methods},
    {Py_tp_doc, (void *)KeyDir_doc},
    {Py_sq_length, (void *)KeyDir_len},
    {0, NULL},
};

static PyType_Spec KeyDir_spec = {
    .name = "aiokv._bitcask.index._ckeydir.KeyDir",
    .basicsize = sizeof(KeyDirObject),
    .itemsize = 0,
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = KeyDir_slots,
};

/* ---------------------------------------------------------------- a hint's entries checked */

/* The length of the UTF-8 sequence at p (at most n bytes there), or 0 if none starts there:
   exactly what Python's strict decoder accepts (no overlong form, no surrogate, nothing
   above U+10FFFF). */
static inline Py_ssize_t
utf8_sequence(const unsigned char *p, Py_ssize_t n)
{
    unsigned c = p[0];
    unsigned lo = 0x80, hi = 0xBF; /* the range of the second byte */
    Py_ssize_t len, k;

    if (c < 0x80) {
        return 1;
    }
    if (c < 0xC2) {
        return 0;
    }
    if (c < 0xE0) {
        len = 2;
    }
    else if (c < 0xF0) {
        len = 3;
        if (c == 0xE0) {
            lo = 0xA0;
        }
        else if (c == 0xED) {
            hi = 0x9F;
        }
    }
    else if (c < 0xF5) {
        len = 4;
        if (c == 0xF0) {
            lo = 0x90;
        }
        else if (c == 0xF4) {
            hi = 0x8F;
        }
    }
    else {
        return 0;
    }
    if (n < len || p[1] < lo || p[1] > hi) {
        return 0;
    }
    for (k = 2; k < len; k++) {
        if ((p[k] & 0xC0) != 0x80) {
            return 0;
        }
    }
    return len;
}

/* Whether the n bytes at p are UTF-8; ASCII (nearly every key) a word at a time. */
static int
is_utf8(const unsigned char *p, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t word;
            memcpy(&word, p + i, sizeof word);
            if ((word & 0x8080808080808080ULL) == 0) {
                i += 8;
                continue;
            }
        }
        if (p[i] < 0x80) {
            i++;
        }
        else {
            Py_ssize_t len = utf8_sequence(p + i, n - i);
            if (len == 0) {
                return 0;
            }
            i += len;
        }
    }
    return 1;
}

static PyObject *
bad_entries(Py_ssize_t i, const char *why)
{
    PyErr_Format(PyExc_ValueError, "entry %zd: %s", i, why);
    return NULL;
}

PyDoc_STRVAR(
    check_entries_doc,
    "check_entries($module, /, keys, lengths, kinds, offsets, sizes, first, covered,\n"
    "              max_key, min_size, max_size)\n--\n\n"
    "Check a hint's entries in one pass, without a Python object per entry.\n\n"
    "Every kind is a put (1) or a delete (2); every key is 1 to `max_key` bytes of UTF-8,\n"
    "followed by 0xFF where its length says, and the keys fill `keys` exactly; every size is\n"
    "above `min_size` and at most `max_size`; the records lie back to back from `first` to\n"
    "`covered`. Arguments as for KeyDir.load. ValueError naming the first entry found wrong.");

static PyObject *
check_entries(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs,
              PyObject *kwnames)
{
    static const char *const names[] = {"keys",  "lengths", "kinds",   "offsets",  "sizes",
                                        "first", "covered", "max_key", "min_size", "max_size"};
    PyObject *argv[10];
    PyObject *result = NULL;
    Py_buffer keys_v, lengths_v, kinds_v, offsets_v, sizes_v;
    int have = 0;
    long long limits[5]; /* first, covered, max_key, min_size, max_size */
    const unsigned char *keys, *lengths, *kinds;
    const uint32_t *offsets, *sizes;
    Py_ssize_t nkeys, count, i, pos = 0;
    uint64_t expected;
    int k;

    if (parse_args("check_entries", names, 10, 10, args, nargs, kwnames, argv) < 0) {
        return NULL;
    }
    for (k = 0; k < 5; k++) {
        if (index_arg(argv[5 + k], names[5 + k], &limits[k]) < 0) {
            return NULL;
        }
        if (limits[k] < 0) {
            PyErr_Format(PyExc_ValueError, "%s out of range", names[5 + k]);
            return NULL;
        }
    }
    if (get_column(argv[0], "keys", 1, &keys_v) < 0) {
        return NULL;
    }
    have = 1;
    if (get_column(argv[1], "lengths", 1, &lengths_v) < 0) {
        goto done;
    }
    have = 2;
    if (get_column(argv[2], "kinds", 1, &kinds_v) < 0) {
        goto done;
    }
    have = 3;
    if (get_column(argv[3], "offsets", 4, &offsets_v) < 0) {
        goto done;
    }
    have = 4;
    if (get_column(argv[4], "sizes", 4, &sizes_v) < 0) {
        goto done;
    }
    have = 5;
    count = kinds_v.len;
    if (lengths_v.len != count || offsets_v.len / 4 != count || sizes_v.len / 4 != count) {
        PyErr_SetString(PyExc_ValueError, "columns of different lengths");
        goto done;
    }
    keys = (const unsigned char *)keys_v.buf;
    lengths = (const unsigned char *)lengths_v.buf;
    kinds = (const unsigned char *)kinds_v.buf;
    offsets = (const uint32_t *)offsets_v.buf;
    sizes = (const uint32_t *)sizes_v.buf;
    nkeys = keys_v.len;
    expected = (uint64_t)limits[0];

    for (i = 0; i < count; i++) {
        Py_ssize_t length = lengths[i];
        uint64_t size = sizes[i];
        if (kinds[i] != KIND_PUT && kinds[i] != KIND_DELETE) {
            bad_entries(i, "an entry of an unknown kind");
            goto done;
        }
        if (length == 0 || length > limits[2]) {
            bad_entries(i, "a key length no record could have");
            goto done;
        }
        if (size <= (uint64_t)limits[3] || size > (uint64_t)limits[4]) {
            bad_entries(i, "a record size no record could have");
            goto done;
        }
        /* Back to back, but for a batch record (format.record) before a batch's first. */
        if (offsets[i] != expected && offsets[i] != expected + BATCH_SIZE) {
            bad_entries(i, "its record does not begin where the one before it ends");
            goto done;
        }
        expected = (uint64_t)offsets[i] + size;
        if (length >= nkeys - pos || keys[pos + length] != KEY_END) {
            bad_entries(i, "its key does not end where its length says");
            goto done;
        }
        if (!is_utf8(keys + pos, length)) {
            bad_entries(i, "a key that is not UTF-8");
            goto done;
        }
        pos += length + 1;
    }
    if (pos != nkeys) {
        PyErr_SetString(PyExc_ValueError, "key lengths do not add up");
        goto done;
    }
    if (expected != (uint64_t)limits[1]) {
        PyErr_SetString(PyExc_ValueError,
                        "its entries do not lie back to back up to what it covers");
        goto done;
    }
    result = Py_NewRef(Py_None);

done:
    if (have >= 5) {
        PyBuffer_Release(&sizes_v);
    }
    if (have >= 4) {
        PyBuffer_Release(&offsets_v);
    }
    if (have >= 3) {
        PyBuffer_Release(&kinds_v);
    }
    if (have >= 2) {
        PyBuffer_Release(&lengths_v);
    }
    if (have >= 1) {
        PyBuffer_Release(&keys_v);
    }
    return result;
}

static PyMethodDef ckeydir_functions[] = {
    {"check_entries", (PyCFunction)(void (*)(void))check_entries, METH_FASTCALL | METH_KEYWORDS,
     check_entries_doc},
    {NULL, NULL, 0, NULL},
};

/* ---------------------------------------------------------------- module */

static int
ckeydir_exec(PyObject *module)
{
    PyObject *type = PyType_FromModuleAndSpec(module, &KeyDir_spec, NULL);
    if (type == NULL) {
        return -1;
    }
    if (PyModule_AddObject(module, "KeyDir", type) < 0) {
        Py_DECREF(type);
        return -1;
    }
    return 0;
}

static PyModuleDef_Slot ckeydir_slots[] = {
    {Py_mod_exec, (void *)ckeydir_exec},
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
    {0, NULL},
};

static struct PyModuleDef ckeydir_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "aiokv._bitcask.index._ckeydir",
    .m_doc = "The key directory in C: see aiokv._bitcask.index.keydir.",
    .m_size = 0,
    .m_methods = ckeydir_functions,
    .m_slots = ckeydir_slots,
};

PyMODINIT_FUNC
PyInit__ckeydir(void)
{
    return PyModuleDef_Init(&ckeydir_module);
}
