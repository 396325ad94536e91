/* dc_api_x.adapters.sql._pgcopy: PostgreSQL binary COPY output -> Arrow column buffers.
 *
 * The optional compiled reader of table reads (adapters/sql/pgcopy.py): the rows of
 * ``COPY (...) TO STDOUT (FORMAT binary)`` decoded into one set of Arrow buffers per column, with
 * exactly the values the ADBC PostgreSQL driver (adbc-driver-postgresql 1.13, copy/reader.h) gives
 * for the same types, in one pass and without a Python object per value. Plain C, no library: libpq
 * is called through the function pointers the caller passes (those of the libpq psycopg loaded).
 *
 * Decoder(kinds, name)
 *   kinds: bytes, one K_* code per column; name: the stream, named in every error
 *   .feed(data)           decode a chunk of the stream (any split: a row may span chunks)
 *   .read(conn, getcopydata, freemem, hint) -> 0 end of the COPY, 1 a batch is ready (at least
 *                         ``hint`` bytes of rows), -2 libpq failed (the caller reads its message);
 *                         PQgetCopyData(conn, &buf, 0) in a loop with the GIL released
 *   .finish()             the stream ended: its trailer must have been read (else ValueError)
 *   .take() -> (rows, [(null_count, validity | None, data, offsets | None), ...])  the rows decoded
 *                         since the last take(), as buffer objects (no copy); the decoder restarts
 *
 * A malformed stream (bad signature, a row with another field count, a field of the wrong width, a
 * truncated row at the end, bytes after the trailer) raises ValueError naming the stream and row; a
 * date or timestamp 'infinity' / '-infinity' raises too (Arrow has no such value), and so does a
 * timestamp after 294247-01-10 (PostgreSQL's go to 294276: past int64 microseconds since 1970), where
 * the ADBC driver's sum wraps around into a wrong instant.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

enum {
    K_BOOL = 1,
    K_I16,
    K_I32,
    K_I64,
    K_F32,
    K_F64,
    K_DATE,
    K_TS,
    K_TIME,
    K_TEXT,
    K_JSONB,
    K_NUMERIC,
    K_UUID,
    K_LAST
};

static const char SIGNATURE[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', '\377', '\r', '\n', '\0'};
#define DATE_EPOCH 10957                   /* days 1970-01-01 .. 2000-01-01 */
#define TS_EPOCH INT64_C(946684800000000)  /* microseconds of the same */

/* ---------------------------------------------------------------------------- owned buffers */

typedef struct {
    char *p;
    Py_ssize_t len, cap;
    Py_ssize_t hint; /* the size of the previous batch's buffer: the first allocation of the next */
} Buf;

static int buf_reserve(Buf *b, Py_ssize_t extra) {
    if (b->len + extra <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : (b->hint > 4096 ? b->hint : 4096);
    while (cap < b->len + extra) {
        if (cap > PY_SSIZE_T_MAX / 2) return -1;
        cap *= 2;
    }
    char *p = realloc(b->p, (size_t)cap);
    if (p == NULL) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

/* a read-only buffer object owning malloc'd memory (handed to pyarrow without a copy) */
typedef struct {
    PyObject_HEAD char *p;
    Py_ssize_t len;
} PgBuf;

static void pgbuf_dealloc(PgBuf *self) {
    free(self->p);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int pgbuf_getbuffer(PgBuf *self, Py_buffer *view, int flags) {
    return PyBuffer_FillInfo(view, (PyObject *)self, self->p ? self->p : (char *)"", self->len, 1, flags);
}

static PyBufferProcs pgbuf_as_buffer = {(getbufferproc)pgbuf_getbuffer, NULL};

static PyTypeObject PgBufType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "dc_api_x.adapters.sql._pgcopy.Buffer",
    .tp_basicsize = sizeof(PgBuf),
    .tp_dealloc = (destructor)pgbuf_dealloc,
    .tp_as_buffer = &pgbuf_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Memory of one Arrow buffer decoded from a COPY stream.",
};

/* the memory of b as a PgBuf (b is left empty) */
static PyObject *buf_release(Buf *b) {
    PgBuf *o = PyObject_New(PgBuf, &PgBufType);
    if (o == NULL) return NULL;
    if (b->len == 0) { /* (a column of no bytes: an empty buffer, nothing held) */
        free(b->p);
        b->p = NULL;
    } else if (b->len < b->cap) { /* the slack of the doubling is not kept alive by the batch */
        char *p = realloc(b->p, (size_t)b->len);
        if (p != NULL) b->p = p;
    }
    o->p = b->p;
    o->len = b->len;
    b->hint = b->len + b->len / 8; /* (no realloc copies while the next batch grows to this size) */
    b->p = NULL;
    b->len = b->cap = 0;
    return (PyObject *)o;
}

/* ---------------------------------------------------------------------------- the decoder */

typedef struct {
    int kind;
    Buf valid, data, offs;
    int64_t nulls;
} Col;

typedef struct {
    PyObject_HEAD int ncols;
    Col *cols;
    int64_t rows;     /* rows in the current batch */
    int64_t row_no;   /* rows of the whole stream (errors) */
    int state;        /* 0: before the header, 1: rows, 2: the trailer was read */
    Buf carry;        /* the start of a row not complete yet */
    int64_t consumed; /* stream bytes of the current batch's rows */
    int failed;  /* 1: malformed data, 2: a value Arrow cannot hold */
    char err[300];
    PyObject *name;
} Decoder;

static int fail(Decoder *d, const char *fmt, long long a, long long b) {
    if (!d->failed) {
        char msg[200];
        PyOS_snprintf(msg, sizeof msg, fmt, a, b);
        PyOS_snprintf(d->err, sizeof d->err, "row %lld: %s", (long long)d->row_no + 1, msg);
        d->failed = 1;
    }
    return -1;
}

/* a value of a well-formed stream that Arrow's type cannot hold */
static int fail_value(Decoder *d, const char *fmt, long long a) {
    int first = !d->failed;
    fail(d, fmt, a, 0);
    if (first) d->failed = 2;
    return -1;
}

static inline uint16_t rd16(const unsigned char *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t rd32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}
static inline uint64_t rd64(const unsigned char *p) { return ((uint64_t)rd32(p) << 32) | rd32(p + 4); }

static int col_start(Col *c) {
    /* a batch's string column starts with the offset 0 */
    if (c->kind == K_TEXT || c->kind == K_JSONB || c->kind == K_NUMERIC) {
        if (buf_reserve(&c->offs, 4)) return -1;
        memset(c->offs.p, 0, 4);
        c->offs.len = 4;
    }
    return 0;
}

/* one validity bit (the bitmap grows a byte at a time) */
static inline int set_valid(Col *c, int64_t row, int valid) {
    Py_ssize_t byte = (Py_ssize_t)(row >> 3);
    if (byte >= c->valid.len) {
        if (buf_reserve(&c->valid, 1)) return -1;
        c->valid.p[c->valid.len++] = 0;
    }
    if (valid)
        c->valid.p[byte] |= (char)(1 << (row & 7));
    else
        c->nulls++;
    return 0;
}

static inline int append(Buf *b, const void *src, Py_ssize_t n) {
    if (buf_reserve(b, n)) return -1;
    memcpy(b->p + b->len, src, (size_t)n);
    b->len += n;
    return 0;
}

static const Py_ssize_t FIXED[K_LAST] = {0, 1, 2, 4, 8, 4, 8, 4, 8, 8, 0, 0, 0, 16};

static int end_string(Decoder *d, Col *c) {
    if (c->data.len > INT32_MAX) return fail(d, "more than 2 GiB of text in one batch", 0, 0);
    int32_t off = (int32_t)c->data.len;
    return append(&c->offs, &off, 4);
}

/* the numeric as text, as the ADBC driver writes it (PostgresCopyNumericFieldReader) */
static int numeric(Decoder *d, Col *c, const unsigned char *p, int32_t len) {
    if (len < 8) return fail(d, "numeric field of %lld bytes", len, 0);
    int ndigits = (int16_t)rd16(p), weight = (int16_t)rd16(p + 2);
    uint16_t sign = rd16(p + 4), dscale = rd16(p + 6);
    if (ndigits < 0 || len != 8 + 2 * ndigits) return fail(d, "numeric field of %lld bytes, %lld digits", len, ndigits);
    const unsigned char *digits = p + 8;
    const char *special = NULL;
    switch (sign) {
        case 0xC000: special = "nan"; break;
        case 0xD000: special = "inf"; break;
        case 0xF000: special = "-inf"; break;
        case 0x0000:
        case 0x4000: break;
        default: return fail(d, "numeric sign %lld", sign, 0);
    }
    if (special) {
        if (append(&c->data, special, (Py_ssize_t)strlen(special))) return -1;
        return end_string(d, c);
    }
    Py_ssize_t need = (weight + 1) * 4;
    if (need < 1) need = 1;
    need += dscale + 4 + 2;
    if (buf_reserve(&c->data, need)) return -1;
    char *out0 = c->data.p + c->data.len, *out = out0;
    if (sign == 0x4000) *out++ = '-';
    int dd, d1, dig;
    if (weight < 0) {
        dd = weight + 1;
        *out++ = '0';
    } else {
        for (dd = 0; dd <= weight; dd++) {
            dig = dd < ndigits ? (int16_t)rd16(digits + 2 * dd) : 0;
            int put = dd > 0;
            static const int pows[3] = {1000, 100, 10};
            for (int k = 0; k < 3; k++) {
                d1 = dig / pows[k];
                dig -= d1 * pows[k];
                put |= d1 > 0;
                if (put) *out++ = (char)(d1 + '0');
            }
            *out++ = (char)(dig + '0');
        }
    }
    Py_ssize_t actual = out - out0;
    if (dscale > 0) {
        *out++ = '.';
        actual += dscale + 1;
        for (int i = 0; i < dscale; dd++, i += 4) {
            dig = (dd >= 0 && dd < ndigits) ? (int16_t)rd16(digits + 2 * dd) : 0;
            static const int pows[3] = {1000, 100, 10};
            for (int k = 0; k < 3; k++) {
                d1 = dig / pows[k];
                dig -= d1 * pows[k];
                *out++ = (char)(d1 + '0');
            }
            *out++ = (char)(dig + '0');
        }
    }
    c->data.len += actual;
    return end_string(d, c);
}

/* one field of the current row (len -1: NULL) */
static int field(Decoder *d, Col *c, const unsigned char *p, int32_t len) {
    int64_t row = d->rows;
    if (len < 0) {
        if (set_valid(c, row, 0)) return -1;
        switch (c->kind) {
            case K_BOOL:
                if ((row & 7) == 0) return append(&c->data, "", 1);
                return 0;
            case K_TEXT:
            case K_JSONB:
            case K_NUMERIC: return end_string(d, c);
            default: {
                static const char zeros[16] = {0};
                return append(&c->data, zeros, FIXED[c->kind]);
            }
        }
    }
    if (set_valid(c, row, 1)) return -1;
    Py_ssize_t w = FIXED[c->kind];
    if (w && len != w) return fail(d, "a field of %lld bytes where %lld are expected", len, w);
    switch (c->kind) {
        case K_BOOL:
            if ((row & 7) == 0 && append(&c->data, "", 1)) return -1;
            if (p[0]) c->data.p[row >> 3] |= (char)(1 << (row & 7));
            return 0;
        case K_I16: {
            uint16_t v = rd16(p);
            return append(&c->data, &v, 2);
        }
        case K_I32:
        case K_F32: {
            uint32_t v = rd32(p);
            return append(&c->data, &v, 4);
        }
        case K_I64:
        case K_F64:
        case K_TIME: {
            uint64_t v = rd64(p);
            return append(&c->data, &v, 8);
        }
        case K_DATE: {
            int32_t v = (int32_t)rd32(p);
            if (v == INT32_MAX || v == INT32_MIN)
                return fail_value(d, "a date 'infinity' or '-infinity' (Arrow has no such date)", 0);
            v += DATE_EPOCH; /* (PostgreSQL's dates end in 5874897: no overflow) */
            return append(&c->data, &v, 4);
        }
        case K_TS: {
            int64_t v = (int64_t)rd64(p);
            if (v == INT64_MAX || v == INT64_MIN)
                return fail_value(d, "a timestamp 'infinity' or '-infinity' (Arrow has no such timestamp)", 0);
            if (v > INT64_MAX - TS_EPOCH)
                return fail_value(d, "a timestamp past Arrow's microsecond range (%lld us after 2000-01-01)", v);
            v += TS_EPOCH;
            return append(&c->data, &v, 8);
        }
        case K_UUID: return append(&c->data, p, 16);
        case K_TEXT:
            if (append(&c->data, p, len)) return -1;
            return end_string(d, c);
        case K_JSONB:
            if (len < 1 || p[0] != 1) return fail(d, "a jsonb field of version %lld", len < 1 ? -1 : p[0], 0);
            if (append(&c->data, p + 1, len - 1)) return -1;
            return end_string(d, c);
        case K_NUMERIC: return numeric(d, c, p, len);
    }
    return fail(d, "column kind %lld", c->kind, 0);
}

/* Decode the complete rows at the start of p[0:n]; returns the bytes consumed, -1 on an error
 * (d->err, or a MemoryError when d->failed is not set). */
static Py_ssize_t parse(Decoder *d, const unsigned char *p, Py_ssize_t n) {
    Py_ssize_t pos = 0;
    if (d->state == 0) {
        if (n < 19) return 0;
        if (memcmp(p, SIGNATURE, 11) != 0) return fail(d, "not a binary COPY stream (no PGCOPY signature)", 0, 0);
        uint32_t ext = rd32(p + 15);
        if ((Py_ssize_t)ext > n - 19) return 0;
        pos = 19 + (Py_ssize_t)ext;
        d->state = 1;
    }
    while (pos < n) {
        if (d->state == 2) return fail(d, "%lld bytes after the end of the stream", n - pos, 0);
        if (n - pos < 2) break;
        int nf = (int16_t)rd16(p + pos);
        if (nf == -1) {
            d->state = 2;
            pos += 2;
            continue;
        }
        if (nf != d->ncols) return fail(d, "%lld fields where %lld columns are expected", nf, d->ncols);
        /* the whole row first: a row cut by the end of the chunk waits for the next one */
        Py_ssize_t q = pos + 2;
        int complete = 1;
        for (int i = 0; i < nf; i++) {
            if (n - q < 4) {
                complete = 0;
                break;
            }
            int32_t len = (int32_t)rd32(p + q);
            q += 4;
            if (len < -1) return fail(d, "a field length of %lld", len, 0);
            if (len > 0) {
                if (n - q < len) {
                    complete = 0;
                    break;
                }
                q += len;
            }
        }
        if (!complete) break;
        q = pos + 2;
        for (int i = 0; i < nf; i++) {
            int32_t len = (int32_t)rd32(p + q);
            q += 4;
            if (field(d, &d->cols[i], p + q, len)) return -1;
            if (len > 0) q += len;
        }
        d->consumed += q - pos;
        d->rows++;
        d->row_no++;
        pos = q;
    }
    return pos;
}

/* decode chunk (carrying over an incomplete row); -1 on an error */
static int consume(Decoder *d, const unsigned char *p, Py_ssize_t n) {
    if (d->carry.len == 0) {
        Py_ssize_t used = parse(d, p, n);
        if (used < 0) return -1;
        if (used < n && append(&d->carry, p + used, n - used)) return -1;
        return 0;
    }
    if (append(&d->carry, p, n)) return -1;
    Py_ssize_t used = parse(d, (const unsigned char *)d->carry.p, d->carry.len);
    if (used < 0) return -1;
    memmove(d->carry.p, d->carry.p + used, (size_t)(d->carry.len - used));
    d->carry.len -= used;
    return 0;
}

static int raise_failed(Decoder *d) {
    if (d->failed == 2)
        PyErr_Format(PyExc_ValueError, "stream %S: a value Arrow cannot hold: %s", d->name, d->err);
    else if (d->failed)
        PyErr_Format(PyExc_ValueError, "stream %S: malformed binary COPY data: %s", d->name, d->err);
    else
        PyErr_NoMemory();
    return -1;
}

static int decoder_init(Decoder *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"kinds", "name", NULL};
    Py_buffer kinds;
    PyObject *name;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*U", kwlist, &kinds, &name)) return -1;
    if (self->cols != NULL || kinds.len < 1 || kinds.len > 1600) {
        PyBuffer_Release(&kinds);
        PyErr_SetString(PyExc_ValueError, "Decoder: 1 to 1600 columns, initialised once");
        return -1;
    }
    self->cols = calloc((size_t)kinds.len, sizeof(Col));
    if (self->cols == NULL) {
        PyBuffer_Release(&kinds);
        PyErr_NoMemory();
        return -1;
    }
    self->ncols = (int)kinds.len;
    for (int i = 0; i < self->ncols; i++) {
        int k = ((unsigned char *)kinds.buf)[i];
        self->cols[i].kind = k;
        if (k < 1 || k >= K_LAST) {
            PyBuffer_Release(&kinds);
            PyErr_Format(PyExc_ValueError, "Decoder: unknown column kind %d", k);
            return -1;
        }
        if (col_start(&self->cols[i])) {
            PyBuffer_Release(&kinds);
            PyErr_NoMemory();
            return -1;
        }
    }
    PyBuffer_Release(&kinds);
    Py_INCREF(name);
    self->name = name;
    return 0;
}

static void decoder_dealloc(Decoder *self) {
    for (int i = 0; i < self->ncols; i++) {
        free(self->cols[i].valid.p);
        free(self->cols[i].data.p);
        free(self->cols[i].offs.p);
    }
    free(self->cols);
    free(self->carry.p);
    Py_XDECREF(self->name);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *decoder_feed(Decoder *self, PyObject *arg) {
    Py_buffer view;
    if (self->failed) return raise_failed(self), NULL;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE)) return NULL;
    int rc = consume(self, view.buf, view.len);
    PyBuffer_Release(&view);
    if (rc) return raise_failed(self), NULL;
    Py_RETURN_NONE;
}

typedef int (*getcopydata_fn)(void *conn, char **buffer, int async);
typedef void (*freemem_fn)(void *ptr);

static PyObject *decoder_read(Decoder *self, PyObject *args) {
    unsigned long long conn, get, fre;
    long long hint;
    if (!PyArg_ParseTuple(args, "KKKL", &conn, &get, &fre, &hint)) return NULL;
    if (self->failed) return raise_failed(self), NULL;
    if (!conn || !get || !fre) {
        PyErr_SetString(PyExc_ValueError, "Decoder.read: null pointer");
        return NULL;
    }
    getcopydata_fn getcopydata = (getcopydata_fn)(uintptr_t)get;
    freemem_fn freemem = (freemem_fn)(uintptr_t)fre;
    int status = 1, err = 0;
    Py_BEGIN_ALLOW_THREADS;
    while (self->consumed < hint) {
        char *buf = NULL;
        int n = getcopydata((void *)(uintptr_t)conn, &buf, 0);
        if (n < 0) {
            status = n == -1 ? 0 : -2;
            break;
        }
        err = consume(self, (const unsigned char *)buf, n);
        freemem(buf);
        if (err) break;
    }
    Py_END_ALLOW_THREADS;
    if (err) return raise_failed(self), NULL;
    return PyLong_FromLong(status);
}

static PyObject *decoder_finish(Decoder *self, PyObject *unused) {
    if (self->failed) return raise_failed(self), NULL;
    if (self->state != 2) {
        PyErr_Format(PyExc_ValueError,
                     "stream %S: malformed binary COPY data: it ends without its trailer "
                     "(%lld rows, %zd bytes of an incomplete row)",
                     self->name, (long long)self->row_no, self->carry.len);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *decoder_take(Decoder *self, PyObject *unused) {
    if (self->failed) return raise_failed(self), NULL;
    PyObject *cols = PyList_New(self->ncols);
    if (cols == NULL) return NULL;
    for (int i = 0; i < self->ncols; i++) {
        Col *c = &self->cols[i];
        PyObject *valid = NULL, *data = NULL, *offs = NULL, *t = NULL;
        int has_offs = c->kind == K_TEXT || c->kind == K_JSONB || c->kind == K_NUMERIC;
        if (c->nulls) {
            valid = buf_release(&c->valid);
        } else {
            c->valid.len = 0;
            valid = Py_NewRef(Py_None);
        }
        data = buf_release(&c->data);
        offs = has_offs ? buf_release(&c->offs) : Py_NewRef(Py_None);
        if (valid && data && offs) t = Py_BuildValue("(LOOO)", (long long)c->nulls, valid, data, offs);
        Py_XDECREF(valid);
        Py_XDECREF(data);
        Py_XDECREF(offs);
        if (t == NULL || col_start(c)) {
            Py_XDECREF(t);
            Py_DECREF(cols);
            return t == NULL ? NULL : PyErr_NoMemory();
        }
        c->nulls = 0;
        PyList_SET_ITEM(cols, i, t);
    }
    PyObject *res = Py_BuildValue("(LN)", (long long)self->rows, cols);
    self->rows = 0;
    self->consumed = 0;
    return res;
}

static PyMethodDef decoder_methods[] = {
    {"feed", (PyCFunction)decoder_feed, METH_O, "Decode a chunk of the COPY stream."},
    {"read", (PyCFunction)decoder_read, METH_VARARGS,
     "read(conn, getcopydata, freemem, hint): decode COPY data from libpq until hint bytes of rows "
     "or the end; 1: a batch is ready, 0: the COPY ended, -2: libpq failed."},
    {"finish", (PyCFunction)decoder_finish, METH_NOARGS, "Check the stream ended with its trailer."},
    {"take", (PyCFunction)decoder_take, METH_NOARGS, "(rows, column buffers) decoded since the last take."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject DecoderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "dc_api_x.adapters.sql._pgcopy.Decoder",
    .tp_basicsize = sizeof(Decoder),
    .tp_dealloc = (destructor)decoder_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Decoder(kinds, name): PostgreSQL binary COPY data -> Arrow column buffers.",
    .tp_methods = decoder_methods,
    .tp_init = (initproc)decoder_init,
    .tp_new = PyType_GenericNew,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_pgcopy", "PostgreSQL binary COPY output -> Arrow column buffers.", -1, NULL,
};

PyMODINIT_FUNC PyInit__pgcopy(void) {
    if (PyType_Ready(&PgBufType) < 0 || PyType_Ready(&DecoderType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&DecoderType);
    if (PyModule_AddObject(m, "Decoder", (PyObject *)&DecoderType) < 0) {
        Py_DECREF(&DecoderType);
        Py_DECREF(m);
        return NULL;
    }
    static const struct {
        const char *name;
        int value;
    } kinds[] = {{"K_BOOL", K_BOOL}, {"K_I16", K_I16},   {"K_I32", K_I32},     {"K_I64", K_I64},
                 {"K_F32", K_F32},   {"K_F64", K_F64},   {"K_DATE", K_DATE},   {"K_TS", K_TS},
                 {"K_TIME", K_TIME}, {"K_TEXT", K_TEXT}, {"K_JSONB", K_JSONB}, {"K_NUMERIC", K_NUMERIC},
                 {"K_UUID", K_UUID}};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (PyModule_AddIntConstant(m, kinds[i].name, kinds[i].value) < 0) {
            Py_DECREF(m);
            return NULL;
        }
    return m;
}
