/* The native entry decoder of dc-api-x-ldap (dc_api_x_ldap._berpage).
 *
 * Decodes the LDAPMessages of one search straight from the bytes read off the socket (RFC 4511
 * BER: definite lengths, one-byte tags) into column buffers: the DNs as a string column's
 * offsets + data, and per property a list<binary> column (validity bitmap, list offsets, value
 * offsets, value bytes) that Python wraps as Arrow arrays without a Python object per value.
 *
 * A Columns object is fed the socket buffer (a bytearray) with feed(); it consumes whole
 * SearchResultEntry messages (the GIL released while it parses), skips SearchResultReference and
 * stops at anything else (SearchResultDone, a notice of disconnection ...) for Python to handle.
 * Attribute descriptions are mapped to columns by exact bytes (add_name()); an entry with an
 * unknown description is not consumed: feed() returns it so Python can resolve it (or raise) and
 * feed again. take() hands over the columns collected so far and starts new ones.
 */
#define PY_SSIZE_T_CLEAN
#define _POSIX_C_SOURCE 200809L
#include <Python.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

/* feed() statuses */
#define ST_MORE 0  /* the buffer ends inside a message: read more (extra: bytes the message needs) */
#define ST_STOP 1  /* a message other than an entry or reference starts at pos (extra: its end) */
#define ST_NAME 2  /* an entry at pos has an unknown attribute description (extra: (name, dn)) */
#define ST_CLOSED 3  /* read(): the peer closed the connection */
#define ST_TIMEOUT 4 /* read(): nothing arrived within the timeout */
#define ST_INTR 5    /* read(): a signal interrupted the wait (Python checks for it and calls again) */

typedef struct {
    char *p;
    size_t len, cap;
} Buf;

static inline int buf_reserve(Buf *b, size_t extra) {
    if (b->len + extra <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + extra) cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static inline int buf_put(Buf *b, const void *src, size_t n) {
    if (buf_reserve(b, n) < 0) return -1;
    if (n) memcpy(b->p + b->len, src, n);
    b->len += n;
    return 0;
}

static inline int buf_i32(Buf *b, int32_t v) { return buf_put(b, &v, sizeof v); }

typedef struct {
    Buf validity;     /* one bit per entry: the entry has the attribute */
    Buf loff;         /* int32 list offsets into the values, entries + 1 */
    Buf voff;         /* int32 offsets into data, values + 1 */
    Buf data;         /* the values' bytes */
    int64_t nvals;
    int64_t nulls;
    int64_t touched;  /* the last entry that had the attribute (-1: none yet) */
    int any;          /* some entry has it */
    size_t hint[4];   /* the sizes the previous take() handed over: the next buffers start there */
} Col;

typedef struct {
    char *name;
    size_t len;
    int col;
} Name;

typedef struct {
    PyObject_HEAD
    int ncols;
    Col *cols;
    Name *names;
    int nnames, capnames;
    int hint;
    int64_t n;        /* entries so far */
    Buf dnoff, dndata;
    int *scratch;     /* column of each attribute of the entry being decoded */
    size_t capscratch;
    int64_t refs;     /* search result references skipped */
    /* pager(): the next page asked for here, without the GIL (NULL: Python asks) */
    char *req;        /* the SearchRequest protocolOp, encoded */
    size_t reqlen;
    char *ctrls;      /* the other controls, encoded (their Control SEQUENCEs) */
    size_t ctrlslen;
    long long page_size;
    int64_t group;    /* ask no further once this many entries are held (Python takes them) */
    long long msgid;  /* the message ID of the search's current page */
    int64_t turned;   /* pages asked for here */
} Columns;

/* -------------------------------------------------------------------------- BER reading */
/* the tag and length at p (at most avail bytes): 0 ok, 1 incomplete, -1 malformed */
static inline int read_tl(const uint8_t *p, size_t avail, uint8_t *tag, size_t *len, size_t *hdr) {
    if (avail < 2) return 1;
    *tag = p[0];
    if ((p[0] & 0x1f) == 0x1f) return -1; /* multi-byte tags are not used by LDAP */
    uint8_t l = p[1];
    if (l < 0x80) {
        *len = l;
        *hdr = 2;
        return 0;
    }
    size_t k = l & 0x7f;
    if (k == 0 || k > 8) return -1; /* indefinite lengths are not allowed in LDAP (RFC 4511 5.1) */
    if (avail < 2 + k) return 1;
    uint64_t v = 0;
    for (size_t i = 0; i < k; i++) v = (v << 8) | p[2 + i];
    if (v > (uint64_t)PTRDIFF_MAX) return -1;
    *len = (size_t)v;
    *hdr = 2 + k;
    return 0;
}

/* the element at *p within [*p, end) with tag want: its content in [*cp, *cp + *clen); advances *p */
static inline int element(const uint8_t **p, const uint8_t *end, uint8_t want, const uint8_t **cp, size_t *clen) {
    uint8_t tag;
    size_t len, hdr;
    if (*p >= end) return -1;
    if (read_tl(*p, (size_t)(end - *p), &tag, &len, &hdr) != 0) return -1;
    if (tag != want || len > (size_t)(end - *p) - hdr) return -1;
    *cp = *p + hdr;
    *clen = len;
    *p += hdr + len;
    return 0;
}

/* -------------------------------------------------------------------------- the object */
static void col_free(Col *c) {
    free(c->validity.p);
    free(c->loff.p);
    free(c->voff.p);
    free(c->data.p);
    memset(c, 0, sizeof *c);
}

static int col_start(Col *c) {
    size_t hint[4];
    memcpy(hint, c->hint, sizeof hint);
    memset(c, 0, sizeof *c);
    memcpy(c->hint, hint, sizeof hint);
    c->touched = -1;
    if (buf_reserve(&c->validity, hint[0]) < 0 || buf_reserve(&c->loff, hint[1] + 4) < 0 ||
        buf_reserve(&c->voff, hint[2] + 4) < 0 || buf_reserve(&c->data, hint[3]) < 0)
        return -1;
    if (buf_i32(&c->loff, 0) < 0 || buf_i32(&c->voff, 0) < 0) return -1;
    return 0;
}

static void cols_reset_all(Columns *self) {
    for (int i = 0; i < self->ncols; i++) {
        Col *c = &self->cols[i];
        size_t hint[4] = {c->validity.len, c->loff.len, c->voff.len, c->data.len};
        col_free(c);
        memcpy(c->hint, hint, sizeof hint);
    }
    free(self->dnoff.p);
    free(self->dndata.p);
    memset(&self->dnoff, 0, sizeof self->dnoff);
    memset(&self->dndata, 0, sizeof self->dndata);
}

static int cols_start(Columns *self) {
    for (int i = 0; i < self->ncols; i++)
        if (col_start(&self->cols[i]) < 0) return -1;
    self->n = 0;
    if (buf_i32(&self->dnoff, 0) < 0) return -1;
    return 0;
}

static void Columns_dealloc(Columns *self) {
    if (self->cols != NULL) {
        cols_reset_all(self);
        free(self->cols);
    }
    for (int i = 0; i < self->nnames; i++) free(self->names[i].name);
    free(self->names);
    free(self->scratch);
    free(self->req);
    free(self->ctrls);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Columns_init(Columns *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"ncols", NULL};
    int ncols;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "i", kwlist, &ncols)) return -1;
    if (ncols < 0 || ncols > 1 << 20) {
        PyErr_SetString(PyExc_ValueError, "ncols out of range");
        return -1;
    }
    if (self->cols != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Columns already initialised");
        return -1;
    }
    self->ncols = ncols;
    self->cols = calloc(ncols ? (size_t)ncols : 1, sizeof(Col));
    if (self->cols == NULL || cols_start(self) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static int find_name(Columns *self, const uint8_t *name, size_t len) {
    int n = self->nnames;
    for (int k = 0; k < n; k++) {
        int i = self->hint + k;
        if (i >= n) i -= n;
        Name *e = &self->names[i];
        if (e->len == len && memcmp(e->name, name, len) == 0) {
            self->hint = i + 1 < n ? i + 1 : 0;
            return e->col;
        }
    }
    return -1;
}

static PyObject *Columns_add_name(Columns *self, PyObject *args) {
    Py_buffer name;
    int col;
    if (!PyArg_ParseTuple(args, "y*i", &name, &col)) return NULL;
    if (col < 0 || col >= self->ncols) {
        PyBuffer_Release(&name);
        PyErr_SetString(PyExc_IndexError, "column out of range");
        return NULL;
    }
    if (find_name(self, name.buf, (size_t)name.len) >= 0) {
        PyBuffer_Release(&name);
        PyErr_SetString(PyExc_ValueError, "attribute description already mapped");
        return NULL;
    }
    if (self->nnames == self->capnames) {
        int cap = self->capnames ? self->capnames * 2 : 32;
        Name *p = realloc(self->names, (size_t)cap * sizeof(Name));
        if (p == NULL) {
            PyBuffer_Release(&name);
            return PyErr_NoMemory();
        }
        self->names = p;
        self->capnames = cap;
    }
    char *copy = malloc(name.len ? (size_t)name.len : 1);
    if (copy == NULL) {
        PyBuffer_Release(&name);
        return PyErr_NoMemory();
    }
    memcpy(copy, name.buf, (size_t)name.len);
    self->names[self->nnames].name = copy;
    self->names[self->nnames].len = (size_t)name.len;
    self->names[self->nnames].col = col;
    self->nnames++;
    PyBuffer_Release(&name);
    Py_RETURN_NONE;
}

#define ERR_MALFORMED -1
#define ERR_NOMEM -2
#define ERR_MSGID -3
#define ERR_TOOBIG -4
#define ERR_NAME 1

/* one SearchResultEntry's content [p, end): appended to the columns, or ERR_NAME with the
 * unknown description in *uname, *ulen (nothing appended) */
static int decode_entry(Columns *self, const uint8_t *p, const uint8_t *end, const uint8_t **uname,
                        size_t *ulen) {
    const uint8_t *dn, *attrs, *q, *aend;
    size_t dnlen, attrslen;
    if (element(&p, end, 0x04, &dn, &dnlen) < 0) return ERR_MALFORMED;
    if (element(&p, end, 0x30, &attrs, &attrslen) < 0) return ERR_MALFORMED;
    if (p != end) return ERR_MALFORMED;
    aend = attrs + attrslen;
    /* first pass: the whole entry well-formed, every description known, the sizes within
     * int32 offsets; nothing is appended until all of that holds */
    size_t k = 0, entry_bytes = 0, entry_vals = 0;
    for (q = attrs; q < aend; k++) {
        const uint8_t *pa, *type, *vals, *v;
        size_t palen, typelen, valslen, vlen;
        if (element(&q, aend, 0x30, &pa, &palen) < 0) return ERR_MALFORMED;
        const uint8_t *r = pa, *pend = pa + palen;
        if (element(&r, pend, 0x04, &type, &typelen) < 0) return ERR_MALFORMED;
        if (element(&r, pend, 0x31, &vals, &valslen) < 0 || r != pend) return ERR_MALFORMED;
        for (const uint8_t *w = vals, *vend = vals + valslen; w < vend; entry_vals++) {
            if (element(&w, vend, 0x04, &v, &vlen) < 0) return ERR_MALFORMED;
            entry_bytes += vlen;
        }
        int col = find_name(self, type, typelen);
        if (col < 0) {
            *uname = type;
            *ulen = typelen;
            return ERR_NAME;
        }
        if (k >= self->capscratch) {
            size_t cap = self->capscratch ? self->capscratch * 2 : 64;
            int *s = realloc(self->scratch, cap * sizeof(int));
            if (s == NULL) return ERR_NOMEM;
            self->scratch = s;
            self->capscratch = cap;
        }
        self->scratch[k] = col;
    }
    for (size_t i = 0; i < k; i++) {
        Col *c = &self->cols[self->scratch[i]];
        if (c->data.len + entry_bytes > INT32_MAX || (size_t)c->nvals + entry_vals > INT32_MAX) return ERR_TOOBIG;
    }
    /* second pass: append (the checks above hold) */
    int64_t row = self->n;
    if (self->dndata.len + dnlen > INT32_MAX) return ERR_TOOBIG;
    if (buf_put(&self->dndata, dn, dnlen) < 0 || buf_i32(&self->dnoff, (int32_t)self->dndata.len) < 0)
        return ERR_NOMEM;
    k = 0;
    for (q = attrs; q < aend; k++) {
        const uint8_t *pa, *type, *vals, *v;
        size_t palen, typelen, valslen, vlen;
        /* validated by the first pass: these cannot fail */
        if (element(&q, aend, 0x30, &pa, &palen) < 0) return ERR_MALFORMED;
        const uint8_t *r = pa, *pend = pa + palen;
        if (element(&r, pend, 0x04, &type, &typelen) < 0 || element(&r, pend, 0x31, &vals, &valslen) < 0)
            return ERR_MALFORMED;
        Col *c = &self->cols[self->scratch[k]];
        c->touched = row;
        const uint8_t *vend = vals + valslen;
        while (vals < vend) {
            if (element(&vals, vend, 0x04, &v, &vlen) < 0) return ERR_MALFORMED;
            if (buf_put(&c->data, v, vlen) < 0 || buf_i32(&c->voff, (int32_t)c->data.len) < 0)
                return ERR_NOMEM;
            c->nvals++;
        }
    }
    /* close the row in every column */
    size_t byte = (size_t)(row >> 3);
    for (int i = 0; i < self->ncols; i++) {
        Col *c = &self->cols[i];
        if (c->validity.len <= byte) {
            if (buf_reserve(&c->validity, 1) < 0) return ERR_NOMEM;
            c->validity.p[c->validity.len++] = 0;
        }
        if (c->touched == row) {
            c->validity.p[byte] |= (char)(1u << (row & 7));
            c->any = 1;
        } else {
            c->nulls++;
        }
        if (buf_i32(&c->loff, (int32_t)c->nvals) < 0) return ERR_NOMEM;
    }
    self->n = row + 1;
    return 0;
}

typedef struct {
    int status, err;
    size_t need, stop_end;
    const uint8_t *uname;
    size_t ulen;
} Outcome;

/* decode the messages of search `msgid` in base[*at, end): stops at the end of the data (MORE),
 * at another message (STOP), at an entry with an unknown description (NAME) or on an error;
 * *at is left at the first message not consumed. No Python API: runs without the GIL. */
static void decode_loop(Columns *self, const uint8_t *base, Py_ssize_t *at_, Py_ssize_t end, long long msgid,
                        Outcome *o) {
    Py_ssize_t at = *at_;
    o->status = ST_MORE;
    o->err = 0;
    o->need = 0;
    while (at < end) {
        uint8_t tag;
        size_t len, hdr;
        const uint8_t *m = base + at;
        size_t avail = (size_t)(end - at);
        int r = read_tl(m, avail, &tag, &len, &hdr);
        if (r == 1) break;
        if (r < 0 || tag != 0x30) {
            o->err = ERR_MALFORMED;
            break;
        }
        if (len > avail - hdr) {
            o->need = hdr + len;
            break;
        }
        const uint8_t *p = m + hdr, *mend = m + hdr + len, *idp, *op;
        size_t idlen, oplen, ohdr;
        if (element(&p, mend, 0x02, &idp, &idlen) < 0 || idlen == 0 || idlen > 4) {
            o->err = ERR_MALFORMED;
            break;
        }
        if (idp[0] & 0x80) { /* message IDs are 0 .. 2^31-1 */
            o->err = ERR_MALFORMED;
            break;
        }
        long long id = 0;
        for (size_t i = 0; i < idlen; i++) id = (id << 8) | idp[i];
        if (read_tl(p, (size_t)(mend - p), &tag, &oplen, &ohdr) != 0 || oplen > (size_t)(mend - p) - ohdr) {
            o->err = ERR_MALFORMED;
            break;
        }
        op = p + ohdr;
        if (id != msgid || (tag != 0x64 && tag != 0x73)) {
            o->status = ST_STOP;
            o->stop_end = hdr + len;
            break;
        }
        if (tag == 0x64) {
            r = decode_entry(self, op, op + oplen, &o->uname, &o->ulen);
            if (r == ERR_NAME) {
                o->status = ST_NAME;
                break;
            }
            if (r < 0) {
                o->err = r;
                break;
            }
        } else {
            self->refs++;
        }
        at += (Py_ssize_t)(hdr + len);
    }
    *at_ = at;
}

/* the Python result of a decode_loop that stopped at `at` (NULL with an exception on errors) */
static PyObject *outcome(const uint8_t *base, Py_ssize_t pos, Py_ssize_t at, Py_ssize_t end, Outcome *o,
                         int with_end) {
    if (o->err == ERR_NOMEM) return PyErr_NoMemory();
    if (o->err == ERR_TOOBIG) {
        PyErr_SetString(PyExc_OverflowError, "a column of the page holds more than 2 GiB; take() sooner");
        return NULL;
    }
    if (o->err < 0) {
        PyErr_Format(PyExc_ValueError, "malformed LDAP message at byte %zd of the buffer", at - pos);
        return NULL;
    }
    PyObject *extra;
    if (o->status == ST_NAME) {
        /* the entry's DN for the message: its first element */
        const uint8_t *m = base + at, *p, *mend, *idp, *op, *dn;
        uint8_t tag;
        size_t len = 0, hdr = 0, idlen = 0, oplen = 0, ohdr = 0, dnlen = 0;
        read_tl(m, (size_t)(end - at), &tag, &len, &hdr);
        p = m + hdr;
        mend = p + len;
        element(&p, mend, 0x02, &idp, &idlen);
        read_tl(p, (size_t)(mend - p), &tag, &oplen, &ohdr);
        op = p + ohdr;
        if (element(&op, op + oplen, 0x04, &dn, &dnlen) < 0) dnlen = 0, dn = op;
        extra = Py_BuildValue("(y#y#)", (const char *)o->uname, (Py_ssize_t)o->ulen, (const char *)dn,
                              (Py_ssize_t)dnlen);
    } else if (o->status == ST_STOP) {
        extra = PyLong_FromSsize_t(at + (Py_ssize_t)o->stop_end);
    } else {
        extra = PyLong_FromSize_t(o->need);
    }
    if (extra == NULL) return NULL;
    if (with_end) return Py_BuildValue("(innN)", o->status, at, end, extra);
    return Py_BuildValue("(inN)", o->status, at, extra);
}

static PyObject *Columns_feed(Columns *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t pos, end;
    long long msgid;
    if (!PyArg_ParseTuple(args, "w*nnL", &view, &pos, &end, &msgid)) return NULL;
    if (pos < 0 || end < pos || end > view.len) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "pos/end outside the buffer");
        return NULL;
    }
    const uint8_t *base = view.buf;
    Outcome o;
    Py_ssize_t at = pos;
    Py_BEGIN_ALLOW_THREADS
    decode_loop(self, base, &at, end, msgid, &o);
    Py_END_ALLOW_THREADS
    PyObject *out = outcome(base, pos, at, end, &o, 0);
    PyBuffer_Release(&view);
    return out;
}

/* ------------------------------------------------------------------ paging without the GIL */
#define PAGED_OID "1.2.840.113556.1.4.319"

/* BER length of n at out (returns the bytes written, at most 9) */
static size_t put_len(uint8_t *out, size_t n) {
    if (n < 0x80) {
        out[0] = (uint8_t)n;
        return 1;
    }
    uint8_t tmp[8];
    size_t k = 0;
    while (n) {
        tmp[k++] = (uint8_t)(n & 0xff);
        n >>= 8;
    }
    out[0] = (uint8_t)(0x80 | k);
    for (size_t i = 0; i < k; i++) out[1 + i] = tmp[k - 1 - i];
    return 1 + k;
}

/* a BER INTEGER (0 .. 2^63-1) at out: tag, length, minimal content */
static size_t put_int(uint8_t *out, long long v) {
    uint8_t tmp[9];
    size_t k = 0;
    do {
        tmp[k++] = (uint8_t)(v & 0xff);
        v >>= 8;
    } while (v);
    if (tmp[k - 1] & 0x80) tmp[k++] = 0;
    out[0] = 0x02;
    out[1] = (uint8_t)k;
    for (size_t i = 0; i < k; i++) out[2 + i] = tmp[k - 1 - i];
    return 2 + k;
}

/* the cookie of a SearchResultDone message m[0, mlen) of search `msgid` that succeeded: 1 with
 * it in [*cookie, +*clen) (empty: the last page), 0 when Python must handle the message (another
 * message, a result code other than success, no paged results control, malformed) */
static int done_cookie(const uint8_t *m, size_t mlen, long long msgid, const uint8_t **cookie, size_t *clen) {
    const uint8_t *p, *end, *idp, *op, *c, *cend, *ctl;
    uint8_t tag;
    size_t len, hdr, idlen, oplen, ctllen;
    if (read_tl(m, mlen, &tag, &len, &hdr) != 0 || tag != 0x30 || len > mlen - hdr) return 0;
    p = m + hdr;
    end = p + len;
    if (element(&p, end, 0x02, &idp, &idlen) < 0 || idlen == 0 || idlen > 4) return 0;
    long long id = 0;
    for (size_t i = 0; i < idlen; i++) id = (id << 8) | idp[i];
    if (id != msgid || element(&p, end, 0x65, &op, &oplen) < 0) return 0;
    /* resultCode ENUMERATED: success (0) only */
    if (oplen < 3 || op[0] != 0x0a || op[1] != 1 || op[2] != 0) return 0;
    if (element(&p, end, 0xa0, &c, &len) < 0) return 0;
    cend = c + len;
    while (c < cend) {
        const uint8_t *q, *qend, *oid, *val;
        size_t oidlen, vallen;
        if (element(&c, cend, 0x30, &ctl, &ctllen) < 0) return 0;
        q = ctl;
        qend = ctl + ctllen;
        if (element(&q, qend, 0x04, &oid, &oidlen) < 0) return 0;
        if (oidlen != sizeof PAGED_OID - 1 || memcmp(oid, PAGED_OID, oidlen) != 0) continue;
        if (q < qend && q[0] == 0x01 && element(&q, qend, 0x01, &val, &vallen) < 0) return 0;
        if (element(&q, qend, 0x04, &val, &vallen) < 0) return 0;
        /* realSearchControlValue ::= SEQUENCE { size INTEGER, cookie OCTET STRING } */
        const uint8_t *sq, *sqend, *sz;
        size_t sqlen, szlen;
        q = val;
        if (element(&q, val + vallen, 0x30, &sq, &sqlen) < 0) return 0;
        sqend = sq + sqlen;
        if (element(&sq, sqend, 0x02, &sz, &szlen) < 0) return 0;
        if (element(&sq, sqend, 0x04, cookie, clen) < 0) return 0;
        return 1;
    }
    return 0;
}

/* send the request of the next page (message `msgid`, cookie): 0, or an errno */
static int send_page(Columns *self, int fd, long long msgid, const uint8_t *cookie, size_t clen, int timeout_ms) {
    /* value: SEQUENCE { INTEGER size, OCTET STRING cookie } */
    size_t total;
    /* headers: at most 9 bytes each (8 of them), two INTEGERs of at most 11, the OID, 3 (critical) */
    uint8_t *buf = malloc(clen + self->reqlen + self->ctrlslen + 8 * 9 + 2 * 11 + sizeof PAGED_OID + 3 + 16);
    if (buf == NULL) return ENOMEM;
    uint8_t num[11], l1[9], l2[9], l3[9], l4[9], l5[9];
    size_t nnum = put_int(num, self->page_size);
    size_t seq_content = nnum + 1 + put_len(l1, clen) + clen;
    size_t value_content = 1 + put_len(l2, seq_content) + seq_content; /* the SEQUENCE */
    size_t ctl_content = 2 + (sizeof PAGED_OID - 1) + 3 + 1 + put_len(l3, value_content) + value_content;
    size_t ctl_total = 1 + put_len(l4, ctl_content) + ctl_content;
    size_t ctrls_content = ctl_total + self->ctrlslen;
    uint8_t idb[11];
    size_t nid = put_int(idb, msgid);
    size_t body = nid + self->reqlen + 1 + put_len(l5, ctrls_content) + ctrls_content;
    uint8_t *o = buf;
    *o++ = 0x30;
    o += put_len(o, body);
    memcpy(o, idb, nid), o += nid;
    memcpy(o, self->req, self->reqlen), o += self->reqlen;
    *o++ = 0xa0;
    o += put_len(o, ctrls_content);
    *o++ = 0x30;
    o += put_len(o, ctl_content);
    *o++ = 0x04;
    *o++ = (uint8_t)(sizeof PAGED_OID - 1);
    memcpy(o, PAGED_OID, sizeof PAGED_OID - 1), o += sizeof PAGED_OID - 1;
    *o++ = 0x01, *o++ = 0x01, *o++ = 0xff; /* critical */
    *o++ = 0x04;
    o += put_len(o, value_content);
    *o++ = 0x30;
    o += put_len(o, seq_content);
    memcpy(o, num, nnum), o += nnum;
    *o++ = 0x04;
    o += put_len(o, clen);
    memcpy(o, cookie, clen), o += clen;
    if (self->ctrlslen) memcpy(o, self->ctrls, self->ctrlslen), o += self->ctrlslen;
    total = (size_t)(o - buf);
    size_t sent = 0;
    int err = 0;
    while (sent < total) {
        ssize_t n = send(fd, buf + sent, total - sent, MSG_NOSIGNAL);
        if (n >= 0) {
            sent += (size_t)n;
            continue;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            struct pollfd pfd = {fd, POLLOUT, 0};
            int pr = poll(&pfd, 1, timeout_ms);
            if (pr > 0 || (pr < 0 && errno == EINTR)) continue;
            err = pr == 0 ? ETIMEDOUT : errno;
            break;
        }
        err = errno;
        break;
    }
    free(buf);
    return err;
}

static PyObject *Columns_pager(Columns *self, PyObject *args) {
    Py_buffer req, ctrls;
    long long page_size, group;
    if (!PyArg_ParseTuple(args, "y*y*LL", &req, &ctrls, &page_size, &group)) return NULL;
    free(self->req);
    free(self->ctrls);
    self->req = malloc(req.len ? (size_t)req.len : 1);
    self->ctrls = malloc(ctrls.len ? (size_t)ctrls.len : 1);
    if (self->req == NULL || self->ctrls == NULL) {
        PyBuffer_Release(&req);
        PyBuffer_Release(&ctrls);
        return PyErr_NoMemory();
    }
    memcpy(self->req, req.buf, (size_t)req.len);
    memcpy(self->ctrls, ctrls.buf, (size_t)ctrls.len);
    self->reqlen = (size_t)req.len;
    self->ctrlslen = (size_t)ctrls.len;
    self->page_size = page_size;
    self->group = group;
    PyBuffer_Release(&req);
    PyBuffer_Release(&ctrls);
    Py_RETURN_NONE;
}

/* read(fd, buffer, pos, end, msgid, timeout_ms, min_room[, coalesce_us]) -> (status, pos, end, extra)
 *
 * Receives first (MSG_DONTWAIT) and polls only when nothing is waiting. When the decoder has
 * caught up with the server, it sleeps coalesce_us (< 1 s) once before polling: the server goes on
 * writing meanwhile, so the next receive takes many entries at once instead of waking this
 * thread for every few kilobytes the server writes (50,000 entries: ~7,000 wake-ups -> ~500). */
static PyObject *Columns_read(Columns *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t pos, end, min_room;
    long long msgid;
    int fd, timeout_ms, coalesce_us = 0;
    if (!PyArg_ParseTuple(args, "iw*nnLin|i", &fd, &view, &pos, &end, &msgid, &timeout_ms, &min_room, &coalesce_us))
        return NULL;
    if (pos < 0 || end < pos || end > view.len || min_room < 1) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "pos/end outside the buffer");
        return NULL;
    }
    if (coalesce_us < 0 || coalesce_us >= 1000000) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "coalesce_us must be 0 .. 999999");
        return NULL;
    }
    uint8_t *base = view.buf;
    Py_ssize_t cap = view.len;
    Outcome o;
    Py_ssize_t at = pos;
    int sys_errno = 0;
    self->msgid = msgid;
    Py_BEGIN_ALLOW_THREADS
    for (;;) {
        decode_loop(self, base, &at, end, msgid, &o);
        if (!o.err && o.status == ST_STOP && self->req != NULL && self->n < self->group) {
            /* a page's end: ask for the next one here, unless it was the last page (or the
             * message is anything but the success it should be: Python handles it) */
            const uint8_t *cookie;
            size_t clen;
            if (done_cookie(base + at, o.stop_end, msgid, &cookie, &clen) && clen > 0 && msgid < 0x7fffffff) {
                int err = send_page(self, fd, msgid + 1, cookie, clen, timeout_ms);
                if (err) {
                    sys_errno = err;
                    break;
                }
                msgid++;
                self->msgid = msgid;
                self->turned++;
                at += (Py_ssize_t)o.stop_end;
                continue;
            }
        }
        if (o.err || o.status != ST_MORE) break;
        /* room for more? else Python makes room (compacts or grows the buffer) */
        if (cap - end < min_room || (o.need && (Py_ssize_t)o.need > cap - at)) break;
        ssize_t n = recv(fd, base + end, (size_t)(cap - end), MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (coalesce_us > 0) {
                struct timespec ts = {0, (long)coalesce_us * 1000L};
                if (nanosleep(&ts, NULL) != 0 && errno == EINTR) {
                    /* a signal: its Python handler must run now, not after the poll below */
                    o.status = ST_INTR;
                    break;
                }
                n = recv(fd, base + end, (size_t)(cap - end), MSG_DONTWAIT);
            }
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = {fd, POLLIN, 0};
            int pr = poll(&pfd, 1, timeout_ms);
            if (pr == 0) {
                o.status = ST_TIMEOUT;
                break;
            }
            if (pr < 0) {
                if (errno == EINTR) {
                    o.status = ST_INTR;
                    break;
                }
                sys_errno = errno;
                break;
            }
            n = recv(fd, base + end, (size_t)(cap - end), MSG_DONTWAIT);
        }
        if (n == 0) {
            o.status = ST_CLOSED;
            break;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) continue;
            if (errno == EINTR) {
                o.status = ST_INTR;
                break;
            }
            sys_errno = errno;
            break;
        }
        end += n;
    }
    Py_END_ALLOW_THREADS
    PyObject *out;
    if (sys_errno) {
        errno = sys_errno;
        out = PyErr_SetFromErrno(PyExc_OSError);
    } else {
        out = outcome(base, pos, at, end, &o, 1);
    }
    PyBuffer_Release(&view);
    return out;
}

/* A read-only buffer owning memory a Buf held: take() hands the column buffers to Python (and
 * Arrow, through pa.py_buffer) without copying them. */
typedef struct {
    PyObject_HEAD
    char *p;
    Py_ssize_t len;
} Owned;

static char empty[1];

static int Owned_getbuffer(Owned *self, Py_buffer *view, int flags) {
    return PyBuffer_FillInfo(view, (PyObject *)self, self->p ? self->p : empty, self->len, 1, flags);
}

static void Owned_dealloc(Owned *self) {
    free(self->p);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static Py_ssize_t Owned_length(Owned *self) { return self->len; }

static PyBufferProcs Owned_as_buffer = {(getbufferproc)Owned_getbuffer, NULL};
static PySequenceMethods Owned_as_sequence = {.sq_length = (lenfunc)Owned_length};

static PyTypeObject OwnedType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "dc_api_x_ldap._berpage.Owned",
    .tp_doc = "bytes of a decoded column (read-only buffer)",
    .tp_basicsize = sizeof(Owned),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)Owned_dealloc,
    .tp_as_buffer = &Owned_as_buffer,
    .tp_as_sequence = &Owned_as_sequence,
};

/* the Buf's memory as an Owned object; the Buf is left empty */
static PyObject *bytes_of(Buf *b) {
    Owned *o = PyObject_New(Owned, &OwnedType);
    if (o == NULL) return NULL;
    o->p = b->p;
    o->len = (Py_ssize_t)b->len;
    b->p = NULL;
    b->len = b->cap = 0;
    return (PyObject *)o;
}

static PyObject *Columns_take(Columns *self, PyObject *Py_UNUSED(ignored)) {
    PyObject *cols = PyList_New(self->ncols);
    if (cols == NULL) return NULL;
    for (int i = 0; i < self->ncols; i++) {
        Col *c = &self->cols[i];
        PyObject *item;
        size_t hint[4] = {c->validity.len, c->loff.len, c->voff.len, c->data.len};
        memcpy(c->hint, hint, sizeof hint);
        if (!c->any) {
            item = Py_NewRef(Py_None);
        } else {
            item = Py_BuildValue("(NNNNLL)", bytes_of(&c->validity), bytes_of(&c->loff), bytes_of(&c->voff),
                                 bytes_of(&c->data), (long long)c->nvals, (long long)c->nulls);
            if (item == NULL) {
                Py_DECREF(cols);
                return NULL;
            }
        }
        PyList_SET_ITEM(cols, i, item);
    }
    PyObject *out =
        Py_BuildValue("(LNNN)", (long long)self->n, bytes_of(&self->dnoff), bytes_of(&self->dndata), cols);
    if (out == NULL) return NULL;
    for (int i = 0; i < self->ncols; i++) { /* free what was not handed over, keep the hints */
        Col *c = &self->cols[i];
        size_t hint[4];
        memcpy(hint, c->hint, sizeof hint);
        col_free(c);
        memcpy(c->hint, hint, sizeof hint);
    }
    size_t dnhint[2] = {self->dnoff.len, self->dndata.len};
    free(self->dnoff.p);
    free(self->dndata.p);
    memset(&self->dnoff, 0, sizeof self->dnoff);
    memset(&self->dndata, 0, sizeof self->dndata);
    if (cols_start(self) < 0 || buf_reserve(&self->dnoff, dnhint[0]) < 0 || buf_reserve(&self->dndata, dnhint[1]) < 0) {
        Py_DECREF(out);
        return PyErr_NoMemory();
    }
    return out;
}

static PyObject *Columns_get_n(Columns *self, void *Py_UNUSED(closure)) { return PyLong_FromLongLong(self->n); }

static PyObject *Columns_get_msgid(Columns *self, void *Py_UNUSED(closure)) {
    return PyLong_FromLongLong(self->msgid);
}

static PyObject *Columns_get_turned(Columns *self, void *Py_UNUSED(closure)) {
    return PyLong_FromLongLong(self->turned);
}

static PyObject *Columns_get_refs(Columns *self, void *Py_UNUSED(closure)) {
    return PyLong_FromLongLong(self->refs);
}

static PyObject *Columns_get_size(Columns *self, void *Py_UNUSED(closure)) {
    size_t total = self->dndata.len;
    for (int i = 0; i < self->ncols; i++) total += self->cols[i].data.len;
    return PyLong_FromSize_t(total);
}

static PyMethodDef Columns_methods[] = {
    {"add_name", (PyCFunction)Columns_add_name, METH_VARARGS,
     "add_name(description: bytes, column: int): entries' attribute `description` fills `column`"},
    {"feed", (PyCFunction)Columns_feed, METH_VARARGS,
     "feed(buffer: bytearray, pos, end, msgid) -> (status, pos, extra): decode the entries of search "
     "`msgid` in buffer[pos:end]; status 0: read more (extra: bytes the next message needs, 0 if not "
     "known), 1: another message is at pos (extra: its end), 2: the entry at pos has an unknown "
     "attribute description (extra: (description, dn))"},
    {"read", (PyCFunction)Columns_read, METH_VARARGS,
     "read(fd, buffer: bytearray, pos, end, msgid, timeout_ms, min_room, coalesce_us=0) -> (status, pos, end, extra): "
     "feed() the buffer, receiving more from the socket `fd` into buffer[end:] as long as at least "
     "min_room bytes are free after end (GIL released throughout); status as feed()'s, plus 3: the "
     "peer closed the connection, 4: timeout, 5: interrupted by a signal; 0 (MORE) now means: make "
     "room (compact or grow the buffer; extra: bytes the next message needs, 0 if not known). It "
     "receives before polling; with coalesce_us, once caught up it waits that long before polling."},
    {"pager", (PyCFunction)Columns_pager, METH_VARARGS,
     "pager(request: bytes, controls: bytes, page_size, group): from now on read() asks for the next "
     "page itself (the SearchRequest protocolOp `request`, the paged results control with the cookie "
     "of the page that ended, then the encoded Control SEQUENCEs `controls`) while fewer than `group` "
     "entries are held and the page ended in success with a cookie; `msgid` is then the new "
     "message ID"},
    {"take", (PyCFunction)Columns_take, METH_NOARGS,
     "take() -> (n, dn_offsets, dn_data, columns): the entries so far, and start anew; a column is "
     "None when no entry has it, else (validity, list_offsets, value_offsets, data, values, nulls)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Columns_getset[] = {
    {"n", (getter)Columns_get_n, NULL, "entries decoded since the last take()", NULL},
    {"references", (getter)Columns_get_refs, NULL, "search result references skipped", NULL},
    {"size", (getter)Columns_get_size, NULL, "bytes of values held", NULL},
    {"msgid", (getter)Columns_get_msgid, NULL, "the message ID of the search's current page", NULL},
    {"turned", (getter)Columns_get_turned, NULL, "pages read() asked for itself (pager())", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ColumnsType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "dc_api_x_ldap._berpage.Columns",
    .tp_doc = "Columns(ncols): search result entries decoded from BER into column buffers",
    .tp_basicsize = sizeof(Columns),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Columns_init,
    .tp_dealloc = (destructor)Columns_dealloc,
    .tp_methods = Columns_methods,
    .tp_getset = Columns_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "dc_api_x_ldap._berpage",
    .m_doc = "LDAP search result entries decoded from BER into Arrow-ready column buffers.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__berpage(void) {
    if (PyType_Ready(&ColumnsType) < 0 || PyType_Ready(&OwnedType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&ColumnsType);
    if (PyModule_AddObject(m, "Columns", (PyObject *)&ColumnsType) < 0) {
        Py_DECREF(&ColumnsType);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "MORE", ST_MORE) < 0 || PyModule_AddIntConstant(m, "STOP", ST_STOP) < 0 ||
        PyModule_AddIntConstant(m, "NAME", ST_NAME) < 0 || PyModule_AddIntConstant(m, "CLOSED", ST_CLOSED) < 0 ||
        PyModule_AddIntConstant(m, "TIMEOUT", ST_TIMEOUT) < 0 || PyModule_AddIntConstant(m, "INTR", ST_INTR) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
