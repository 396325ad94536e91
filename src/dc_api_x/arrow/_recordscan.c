/* dc_api_x.arrow._recordscan: Singer RECORD lines of one stream with a flat typed schema -> column buffers.
 *
 * The optional compiled half of target-dcapix's column path (targets/target_dcapix/columnar.py,
 * dc_api_x/arrow/native.py): one pass over each line, no Python object per value. It takes a line
 * only when it can tell exactly what the Python path would make of it; on anything else it returns
 * None for the whole block and the Python path (msgspec, then orjson) reads it, naming a bad line.
 *
 * scan(lines, stream, names, kinds, flags) -> None | (line_kinds, columns, bounds)
 *   lines:  list of bytes, one JSON message each (no newline), or the bytes of a block of lines,
 *           each ending with a newline but perhaps the last (then bounds: int64 (start, end)
 *           offsets of each line in it, without its newline; None for a list)
 *   stream: bytes, the stream name (plain ASCII/UTF-8 needing no JSON escape)
 *   names:  tuple of bytes, the record's field names (needing no JSON escape)
 *   kinds:  bytes, one per field: 'i' int64, 'b' boolean, 's' string, 'n' float64 number,
 *           'j' JSON text (the value's own text, when it is what orjson.dumps(orjson.loads(text))
 *           gives back)
 *   flags:  bytes, one per field: F_REQUIRED, F_NULL (null allowed), and for 'j' the value types
 *           allowed (F_OBJECT, F_ARRAY, F_STRING, F_INT, F_FLOAT, F_BOOL)
 *   line_kinds: bytes, 'R' for a RECORD line of the stream (a row), 'O' for a line whose "type"
 *           is another string (the caller checks it is a STATE message)
 *   columns: one tuple per field: (null_count, validity, data, offsets, rebuilt) — validity:
 *           bytes of an Arrow validity bitmap or None; data: int64 / float64 values, an Arrow
 *           bit-packed boolean buffer or UTF-8 text; offsets: int32 offsets (strings, JSON text)
 *           or None; rebuilt: the number of JSON texts of the column that are valid JSON but not
 *           spelled as orjson.dumps(orjson.loads(text)) spells them (whitespace, other escapes or
 *           number spellings, duplicate keys): the caller then rebuilds that column's texts as the
 *           Python path does. A JSON-text value of a type the schema does not allow is refused
 *           only when it is spelled as orjson spells it (else the caller's rebuild checks it).
 *
 * scan_page(body, key, names, kinds, flags, others) -> None | (rows, columns, texts, spans)
 *   One HTTP page body, a JSON object {"<key>": [{record}, ...], <other keys>...} (its keys in any
 *   order): each record object read into the columns as scan reads a RECORD line's record (the same
 *   rules and refusals), and the other top-level keys kept as their texts.
 *   key:    bytes, the records key; others: tuple of bytes, the other top-level keys allowed
 *   rows:   the number of records; columns: as scan's
 *   texts:  one per name of others: the bytes of its value's JSON text, or None when the body lacks it
 *   spans:  bytes, int64 (start, end) offsets of each record object in body
 *   Refused besides: a body that is not one object, a top-level key with an escape, not in others or
 *   given twice, no records key, a record that is not an object, an other key's value that is not
 *   valid JSON (or holds a lone surrogate escape or a number of 16+ digits / a 3-digit exponent).
 *
 * join(parts, kinds) -> columns
 *   parts: list of (columns, lo, n), columns as scan_page gives them: their rows [lo, lo + n) one
 *   after the other as one set of column tuples (as scan's; rebuilt: the parts' sum).
 *
 * canonical_records(body, spans, start, indexes) -> bytes | None
 *   orjson.dumps(records, option=OPT_SORT_KEYS) of the records at spans[start + i] (i in indexes)
 *   of body, written from their texts (the keys of records and objects sorted), when every key is
 *   plain (no escape) and every value is spelled as orjson writes it; None otherwise.
 *
 * Refused (None), among others: a key or a "type"/"stream" value with a backslash escape, "type" not
 * the first key, a duplicate key, a field the schema does not name, a required field left out, a
 * null where the schema does not allow it, an integer outside int64, a fraction or an exponent in an
 * integer field, a number of 16+ digits or with a 3-digit exponent in a number field (float64 may
 * not hold it: the exact path decides), a lone surrogate escape, invalid UTF-8, a blank line, and a
 * JSON-text value nested deeper than 64 or holding a number of 16+ digits / a 3-digit exponent.
 *
 * Over 1,500 lines because the RECORD-line scan and the HTTP page scan (scan_page, join,
 * canonical_records) share one JSON value scanner and one set of column buffers: split, the rules
 * that make both agree with the Python paths would be written twice.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <stdint.h>
#include <string.h>

#define F_REQUIRED 1
#define F_NULL 2
#define F_OBJECT 4
#define F_ARRAY 8
#define F_STRING 16
#define F_INT 32
#define F_FLOAT 64
#define F_BOOL 128

#define MAX_DEPTH 64
#define MAX_KEYS 64

typedef struct {
    char *p;
    Py_ssize_t len, cap;
} Buf;

static int buf_grow(Buf *b, Py_ssize_t extra) {
    Py_ssize_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra) cap *= 2;
    char *np = PyMem_RawRealloc(b->p, (size_t)cap); /* (without the GIL in scan_page) */
    if (!np) return -1;
    b->p = np;
    b->cap = cap;
    return 0;
}

static inline int buf_reserve(Buf *b, Py_ssize_t extra) {
    if (b->len + extra <= b->cap) return 0;
    return buf_grow(b, extra);
}

static inline int buf_put(Buf *b, const void *src, Py_ssize_t n) {
    if (buf_reserve(b, n) < 0) return -1;
    memcpy(b->p + b->len, src, (size_t)n);
    b->len += n;
    return 0;
}

typedef struct {
    char kind;
    unsigned char flags;
    const char *name;
    Py_ssize_t name_len;
    Buf data;     /* int64 / double / one byte per bool / text */
    Buf valid;    /* one byte per row */
    Buf offsets;  /* int32 per row + 1 (strings) */
    Py_ssize_t nulls;
    Py_ssize_t rebuilt; /* JSON texts not spelled as orjson spells them */
} Col;

/* 0: ok, 1: refused (the Python path decides), -1: a Python error (memory) */
#define OK 0
#define REFUSE 1
#define ERR (-1)

/* Equal bytes: short keys and names, where a call to memcmp costs more than the compare. */
static inline int same(const char *a, const char *b, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

static inline const char *skip_ws(const char *p, const char *e) {
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

/* After a member of an object or an element of an array, blanks allowed: a ',' and the blanks after
 * it (1: another one follows), or the closing character ``close`` (0: the container ends; p past
 * it); anything else, or the end of the text, -1 (refused). */
static inline int next_member(const char **pp, const char *e, char close) {
    const char *p = skip_ws(*pp, e);
    if (p >= e) return -1;
    if (*p == ',') {
        *pp = skip_ws(p + 1, e);
        return 1;
    }
    if (*p != close) return -1;
    *pp = p + 1;
    return 0;
}

/* Length of a valid UTF-8 sequence starting at p (first byte >= 0x80), 0 when invalid. */
static inline int utf8_len(const unsigned char *p, const unsigned char *e) {
    unsigned char c = p[0];
    if (c >= 0xC2 && c <= 0xDF) {
        if (e - p >= 2 && (p[1] & 0xC0) == 0x80) return 2;
        return 0;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (e - p < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && p[1] < 0xA0) return 0;  /* overlong */
        if (c == 0xED && p[1] >= 0xA0) return 0; /* surrogates */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (e - p < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) return 0;
        if (c == 0xF0 && p[1] < 0x90) return 0;  /* overlong */
        if (c == 0xF4 && p[1] >= 0x90) return 0; /* above U+10FFFF */
        return 4;
    }
    return 0;
}

static inline int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static inline int hex4(const char *p) {
    int a = hexval(p[0]), b = hexval(p[1]), c = hexval(p[2]), d = hexval(p[3]);
    if ((a | b | c | d) < 0) return -1;
    return (a << 12) | (b << 8) | (c << 4) | d;
}

/* A plain key or short string without escapes: p at the opening quote; *s, *n: its bytes. The
 * bytes must be valid UTF-8 and hold no control character. REFUSE on a backslash. */
static int plain_string(const char **pp, const char *e, const char **s, Py_ssize_t *n) {
    const char *p = *pp + 1, *start = p;
    while (p < e) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            *s = start;
            *n = p - start;
            *pp = p + 1;
            return OK;
        }
        if (c == '\\' || c < 0x20) return REFUSE;
        if (c >= 0x80) {
            int k = utf8_len((const unsigned char *)p, (const unsigned char *)e);
            if (!k) return REFUSE;
            p += k;
        } else {
            p++;
        }
    }
    return REFUSE;
}

/* The bytes a string scan must look at: '"', '\\', a control character, a byte >= 0x80. */
static const unsigned char string_stop[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

/* A JSON string value decoded into out (UTF-8; out NULL: only checked). p at the opening quote. */
static int decode_string(const char **pp, const char *e, Buf *out) {
    const char *p = *pp + 1;
    const char *run = p;
    for (;;) {
        while (p < e && !string_stop[(unsigned char)*p]) p++; /* plain ASCII: nothing to do */
        if (p >= e) return REFUSE;
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            if (out && buf_put(out, run, p - run) < 0) return ERR;
            *pp = p + 1;
            return OK;
        }
        if (c < 0x20) return REFUSE;
        if (c < 0x80) {
            if (c != '\\') {
                p++;
                continue;
            }
            if (out && buf_put(out, run, p - run) < 0) return ERR;
            if (e - p < 2) return REFUSE;
            char esc = p[1];
            char ch;
            switch (esc) {
                case '"': ch = '"'; break;
                case '\\': ch = '\\'; break;
                case '/': ch = '/'; break;
                case 'b': ch = '\b'; break;
                case 'f': ch = '\f'; break;
                case 'n': ch = '\n'; break;
                case 'r': ch = '\r'; break;
                case 't': ch = '\t'; break;
                case 'u': {
                    if (e - p < 6) return REFUSE;
                    int cp = hex4(p + 2);
                    if (cp < 0) return REFUSE;
                    p += 6;
                    if (cp >= 0xDC00 && cp <= 0xDFFF) return REFUSE; /* a lone low surrogate */
                    if (cp >= 0xD800 && cp <= 0xDBFF) {
                        if (e - p < 6 || p[0] != '\\' || p[1] != 'u') return REFUSE;
                        int lo = hex4(p + 2);
                        if (lo < 0xDC00 || lo > 0xDFFF) return REFUSE;
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        p += 6;
                    }
                    char u[4];
                    int k;
                    if (cp < 0x80) {
                        u[0] = (char)cp;
                        k = 1;
                    } else if (cp < 0x800) {
                        u[0] = (char)(0xC0 | (cp >> 6));
                        u[1] = (char)(0x80 | (cp & 0x3F));
                        k = 2;
                    } else if (cp < 0x10000) {
                        u[0] = (char)(0xE0 | (cp >> 12));
                        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
                        u[2] = (char)(0x80 | (cp & 0x3F));
                        k = 3;
                    } else {
                        u[0] = (char)(0xF0 | (cp >> 18));
                        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
                        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
                        u[3] = (char)(0x80 | (cp & 0x3F));
                        k = 4;
                    }
                    if (out && buf_put(out, u, k) < 0) return ERR;
                    run = p;
                    continue;
                }
                default: return REFUSE;
            }
            if (out && buf_put(out, &ch, 1) < 0) return ERR;
            p += 2;
            run = p;
            continue;
        }
        int k = utf8_len((const unsigned char *)p, (const unsigned char *)e);
        if (!k) return REFUSE;
        p += k;
    }
}

/* A JSON number's extent and shape. */
typedef struct {
    const char *s;
    Py_ssize_t n;
    int is_int;  /* no fraction, no exponent */
    int digits;  /* digits of the integer and fraction parts */
    int exp_digits;
} Num;

static int scan_number(const char **pp, const char *e, Num *num) {
    const char *p = *pp, *s = p;
    int digits = 0, exp_digits = 0, is_int = 1;
    if (p < e && *p == '-') p++;
    if (p >= e) return REFUSE;
    if (*p == '0') {
        p++;
        digits = 1;
    } else if (*p >= '1' && *p <= '9') {
        while (p < e && *p >= '0' && *p <= '9') {
            p++;
            digits++;
        }
    } else {
        return REFUSE;
    }
    if (p < e && *p == '.') {
        is_int = 0;
        p++;
        const char *f = p;
        while (p < e && *p >= '0' && *p <= '9') p++;
        if (p == f) return REFUSE;
        digits += (int)(p - f);
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        is_int = 0;
        p++;
        if (p < e && (*p == '+' || *p == '-')) p++;
        const char *f = p;
        while (p < e && *p >= '0' && *p <= '9') p++;
        if (p == f) return REFUSE;
        exp_digits = (int)(p - f);
    }
    num->s = s;
    num->n = p - s;
    num->is_int = is_int;
    num->digits = digits;
    num->exp_digits = exp_digits;
    *pp = p;
    return OK;
}

/* An integer text (checked by scan_number, is_int) as int64; REFUSE outside int64. */
static int num_to_int64(const Num *num, int64_t *out) {
    const char *p = num->s, *e = num->s + num->n;
    int neg = 0;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    uint64_t v = 0;
    const uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; p < e; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (lim - d) / 10) return REFUSE;
        v = v * 10 + d;
    }
    if (neg)
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    else
        *out = (int64_t)v;
    return OK;
}

/* scan_page reads a body without the GIL (the column buffers are PyMem_Raw memory): this thread's
 * state while it is released, for the one call that needs it (PyOS_string_to_double). */
static __thread PyThreadState *released;

static void gil_take(void) {
    if (released) PyEval_RestoreThread(released);
}

static void gil_drop(void) {
    if (released) released = PyEval_SaveThread();
}

/* A float text (no more than 15 digits, a 1-2 digit exponent) parsed correctly rounded: the digits
 * as an integer (exact below 2**53) times or divided by an exact power of ten (up to 1e22) is one
 * correctly rounded IEEE operation (Clinger's fast path; with SSE2-style double evaluation only),
 * else Python's own correctly rounded parser. */
static int num_to_double(const Num *num, double *out) {
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                   1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    {
        const char *p = num->s, *e = num->s + num->n;
        int neg = 0, frac = 0, exp = 0, exp_neg = 0, in_frac = 0;
        int64_t m = 0;
        if (*p == '-') {
            neg = 1;
            p++;
        }
        for (; p < e; p++) {
            char c = *p;
            if (c >= '0' && c <= '9') {
                m = m * 10 + (c - '0'); /* at most 15 digits: below 2**53 */
                frac += in_frac;
            } else if (c == '.') {
                in_frac = 1;
            } else { /* 'e' / 'E' */
                p++;
                if (p < e && (*p == '+' || *p == '-')) exp_neg = *p++ == '-';
                for (; p < e; p++) exp = exp * 10 + (*p - '0'); /* 1-2 digits */
                break;
            }
        }
        int e10 = (exp_neg ? -exp : exp) - frac;
        if (num->digits <= 15 && e10 >= -22 && e10 <= 22) {
            double v = (double)m;
            v = e10 < 0 ? v / pow10[-e10] : v * pow10[e10];
            *out = neg ? -v : v;
            return OK;
        }
    }
#endif
    char tmp[64];
    if (num->n >= (Py_ssize_t)sizeof tmp) return REFUSE;
    memcpy(tmp, num->s, (size_t)num->n);
    tmp[num->n] = 0;
    char *end = NULL;
    gil_take();
    double v = PyOS_string_to_double(tmp, &end, NULL);
    if (v == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        gil_drop();
        return REFUSE;
    }
    gil_drop();
    if (end != tmp + num->n) return REFUSE;
    *out = v;
    return OK;
}

static int skip_value(const char **pp, const char *e, int depth);

/* Any JSON value (whitespace allowed inside), checked as JSON and UTF-8; p at its first byte. */
static int skip_value(const char **pp, const char *e, int depth) {
    const char *p = *pp;
    if (p >= e) return REFUSE;
    if (depth > MAX_DEPTH) return REFUSE;
    switch (*p) {
        case '"': {
            int r = decode_string(&p, e, NULL);
            if (r) return r;
            break;
        }
        case '{':
        case '[': {
            char close = *p == '{' ? '}' : ']';
            int obj = *p == '{';
            p = skip_ws(p + 1, e);
            if (p < e && *p == close) {
                p++;
                break;
            }
            for (;;) {
                if (obj) {
                    if (p >= e || *p != '"') return REFUSE;
                    int r = decode_string(&p, e, NULL);
                    if (r) return r;
                    p = skip_ws(p, e);
                    if (p >= e || *p != ':') return REFUSE;
                    p = skip_ws(p + 1, e);
                }
                int r = skip_value(&p, e, depth + 1);
                if (r) return r;
                int more = next_member(&p, e, close);
                if (more < 0) return REFUSE;
                if (more) continue;
                break;
            }
            break;
        }
        case 't':
            if (e - p < 4 || memcmp(p, "true", 4)) return REFUSE;
            p += 4;
            break;
        case 'f':
            if (e - p < 5 || memcmp(p, "false", 5)) return REFUSE;
            p += 5;
            break;
        case 'n':
            if (e - p < 4 || memcmp(p, "null", 4)) return REFUSE;
            p += 4;
            break;
        default: {
            Num num;
            int r = scan_number(&p, e, &num);
            if (r) return r;
            if (num.digits >= 16 || num.exp_digits >= 3) return REFUSE;
        }
    }
    *pp = p;
    return OK;
}

/* A string spelled as orjson.dumps spells it: raw bytes >= 0x20 but '"' and '\\' (valid UTF-8),
 * and only the escapes orjson writes (\" \\ \b \t \n \f \r, \u00xx for the other controls). */
static int canonical_string(const char **pp, const char *e) {
    const char *p = *pp + 1;
    for (;;) {
        while (p < e && !string_stop[(unsigned char)*p]) p++; /* plain ASCII */
        if (p >= e) return REFUSE;
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            *pp = p + 1;
            return OK;
        }
        if (c < 0x20) return REFUSE;
        if (c == '\\') {
            if (e - p < 2) return REFUSE;
            char esc = p[1];
            if (esc == '"' || esc == '\\' || esc == 'b' || esc == 't' || esc == 'n' || esc == 'f' ||
                esc == 'r') {
                p += 2;
                continue;
            }
            if (esc != 'u' || e - p < 6 || p[2] != '0' || p[3] != '0') return REFUSE;
            if (p[4] != '0' && p[4] != '1') return REFUSE;
            char l = p[5];
            int v = (l >= '0' && l <= '9') ? l - '0' : (l >= 'a' && l <= 'f') ? l - 'a' + 10 : -1;
            if (v < 0) return REFUSE;
            v += (p[4] - '0') * 16;
            if (v == 8 || v == 9 || v == 10 || v == 12 || v == 13) return REFUSE; /* orjson: \b \t \n \f \r */
            p += 6;
            continue;
        }
        if (c < 0x80) {
            p++;
            continue;
        }
        int k = utf8_len((const unsigned char *)p, (const unsigned char *)e);
        if (!k) return REFUSE;
        p += k;
    }
}

/* A number spelled as orjson.dumps spells what orjson.loads reads from it: an integer without
 * leading zeros (not -0) of at most 15 digits, or a float in fixed notation that is its own
 * shortest round-trip spelling (as orjson's writer spells it in fixed notation). */
static int canonical_number(const char **pp, const char *e, int *is_int) {
    Num num;
    int r = scan_number(pp, e, &num);
    if (r) return r;
    if (num.digits >= 16 || num.exp_digits) return REFUSE;
    *is_int = num.is_int;
    if (num.is_int) {
        if (num.n == 2 && num.s[0] == '-' && num.s[1] == '0') return REFUSE;
        return OK;
    }
    /* -?I.F with at most 15 digits: any two such spellings without trailing zeros that read as
     * the same double are the same (a double keeps 15 significant decimal digits, DBL_DIG), so
     * the text is the shortest round-trip spelling (repr) when F has no trailing zero (but the
     * ".0" of an integral value); repr and orjson write fixed notation alike from 1e-4 to 1e16
     * (below 1e-4 repr writes an exponent: such texts are left to the rebuild). */
    const char *i0 = num.s[0] == '-' ? num.s + 1 : num.s;
    const char *dot = memchr(i0, '.', (size_t)(num.s + num.n - i0));
    if (!dot) return REFUSE;
    const char *f0 = dot + 1, *f1 = num.s + num.n;
    if (f1 - f0 > 1 && f1[-1] == '0') return REFUSE; /* 0.50, 1.00 */
    if (dot - i0 == 1 && *i0 == '0' && !(f1 - f0 == 1 && *f0 == '0')) {
        int zeros = 0;
        while (f0 + zeros < f1 && f0[zeros] == '0') zeros++;
        if (zeros > 3) return REFUSE; /* below 1e-4 */
    }
    return OK;
}

/* A JSON value spelled exactly as orjson.dumps(orjson.loads(text)) spells it; *type: its F_ type
 * (F_NULL for null). */
static int canonical_value(const char **pp, const char *e, int depth, int *type) {
    const char *p = *pp;
    if (p >= e || depth > MAX_DEPTH) return REFUSE;
    int r;
    switch (*p) {
        case '"':
            *type = F_STRING;
            r = canonical_string(&p, e);
            if (r) return r;
            break;
        case '{': {
            *type = F_OBJECT;
            p++;
            if (p < e && *p == '}') {
                p++;
                break;
            }
            const char *ks[MAX_KEYS];
            Py_ssize_t kn[MAX_KEYS];
            int nk = 0;
            for (;;) {
                if (p >= e || *p != '"' || nk >= MAX_KEYS) return REFUSE;
                const char *k0 = p;
                r = canonical_string(&p, e);
                if (r) return r;
                Py_ssize_t len = p - k0;
                for (int i = 0; i < nk; i++)  /* canonical spellings: equal keys, equal bytes */
                    if (kn[i] == len && same(ks[i], k0, len)) return REFUSE;
                ks[nk] = k0;
                kn[nk++] = len;
                if (p >= e || *p != ':') return REFUSE;
                p++;
                int t;
                r = canonical_value(&p, e, depth + 1, &t);
                if (r) return r;
                if (p >= e) return REFUSE;
                if (*p == ',') {
                    p++;
                    continue;
                }
                if (*p == '}') {
                    p++;
                    break;
                }
                return REFUSE;
            }
            break;
        }
        case '[': {
            *type = F_ARRAY;
            p++;
            if (p < e && *p == ']') {
                p++;
                break;
            }
            for (;;) {
                int t;
                r = canonical_value(&p, e, depth + 1, &t);
                if (r) return r;
                if (p >= e) return REFUSE;
                if (*p == ',') {
                    p++;
                    continue;
                }
                if (*p == ']') {
                    p++;
                    break;
                }
                return REFUSE;
            }
            break;
        }
        case 't':
            if (e - p < 4 || memcmp(p, "true", 4)) return REFUSE;
            *type = F_BOOL;
            p += 4;
            break;
        case 'f':
            if (e - p < 5 || memcmp(p, "false", 5)) return REFUSE;
            *type = F_BOOL;
            p += 5;
            break;
        case 'n':
            if (e - p < 4 || memcmp(p, "null", 4)) return REFUSE;
            *type = F_NULL;
            p += 4;
            break;
        default: {
            int is_int;
            r = canonical_number(&p, e, &is_int);
            if (r) return r;
            *type = is_int ? F_INT : F_FLOAT;
        }
    }
    *pp = p;
    return OK;
}

static int put_null(Col *c) {
    if (!(c->flags & F_NULL)) return REFUSE;
    return OK; /* the caller writes the row's validity and filler */
}

/* One row's value of column c, p at its first byte; *valid: 0 for a null. */
static int column_value(Col *c, const char **pp, const char *e, int *valid) {
    const char *p = *pp;
    int r;
    *valid = 1;
    if (c->kind != 'j' && p < e && *p == 'n') {
        if (e - p < 4 || memcmp(p, "null", 4)) return REFUSE;
        if ((r = put_null(c))) return r;
        *valid = 0;
        *pp = p + 4;
        return OK;
    }
    switch (c->kind) {
        case 'i': {
            Num num;
            int64_t v;
            if ((r = scan_number(&p, e, &num))) return r;
            if (!num.is_int) return REFUSE;
            if ((r = num_to_int64(&num, &v))) return r;
            if (buf_put(&c->data, &v, 8) < 0) return ERR;
            break;
        }
        case 'n': {
            Num num;
            double v;
            if ((r = scan_number(&p, e, &num))) return r;
            if (num.digits >= 16 || num.exp_digits >= 3) return REFUSE;
            if (num.is_int) { /* an int on the dict path (-0 is 0), exact in float64 below 2**53 */
                int64_t iv;
                if ((r = num_to_int64(&num, &iv))) return r;
                v = (double)iv;
            } else if ((r = num_to_double(&num, &v))) {
                return r;
            }
            if (buf_put(&c->data, &v, 8) < 0) return ERR;
            break;
        }
        case 'b': {
            char v;
            if (e - p >= 4 && memcmp(p, "true", 4) == 0) {
                v = 1;
                p += 4;
            } else if (e - p >= 5 && memcmp(p, "false", 5) == 0) {
                v = 0;
                p += 5;
            } else {
                return REFUSE;
            }
            if (buf_put(&c->data, &v, 1) < 0) return ERR;
            break;
        }
        case 's': {
            if (p >= e || *p != '"') return REFUSE;
            if ((r = decode_string(&p, e, &c->data))) return r;
            break;
        }
        case 'j': {
            const char *s = p;
            int t;
            r = canonical_value(&p, e, 0, &t);
            if (r == REFUSE) {
                /* Not orjson's spelling (whitespace, escapes, number spellings, duplicate keys):
                 * kept as written, valid JSON; the caller rebuilds the column's texts with
                 * orjson as the Python path does (rebuilt counts them). */
                p = s;
                if ((r = skip_value(&p, e, 0))) return r;
                c->rebuilt++;
                if (buf_put(&c->data, s, p - s) < 0) return ERR;
                break;
            }
            if (r) return r;
            int allowed = c->flags;
            if (t == F_INT && (allowed & F_FLOAT)) t = F_FLOAT; /* "number" allows integers */
            if (t == F_INT && !(allowed & F_INT)) return REFUSE;
            if (!(allowed & t)) return REFUSE;
            if (t == F_NULL) {
                *valid = 0;
                break;
            }
            if (buf_put(&c->data, s, p - s) < 0) return ERR;
            break;
        }
        default: return REFUSE;
    }
    *pp = p;
    return OK;
}

static int fill_null(Col *c) {
    static const char zeros[8] = {0};
    switch (c->kind) {
        case 'i':
        case 'n': return buf_put(&c->data, zeros, 8) < 0 ? ERR : OK;
        case 'b': return buf_put(&c->data, zeros, 1) < 0 ? ERR : OK;
        default: return OK;
    }
}

static int end_row(Col *c, int valid) {
    char v = (char)valid;
    if (!valid) {
        c->nulls++;
        if (fill_null(c)) return ERR;
    }
    if (buf_put(&c->valid, &v, 1) < 0) return ERR;
    if (c->kind == 's' || c->kind == 'j') {
        if (c->data.len > INT32_MAX) return REFUSE;
        int32_t off = (int32_t)c->data.len;
        if (buf_put(&c->offsets, &off, 4) < 0) return ERR;
    }
    return OK;
}

typedef struct {
    const char *stream;
    Py_ssize_t stream_len;
    Col *cols;
    int ncols;
    unsigned char *seen;
} Ctx;

static inline int find_col(Ctx *x, const char *k, Py_ssize_t n, int hint) {
    for (int j = 0; j < x->ncols; j++) {
        int i = hint + j;
        if (i >= x->ncols) i -= x->ncols;
        Col *c = &x->cols[i];
        if (c->name_len == n && same(c->name, k, n)) return i;
    }
    return -1;
}

/* The record object of a RECORD line: each field into its column. */
static int scan_record(Ctx *x, const char **pp, const char *e) {
    const char *p = *pp;
    int r;
    if (p >= e || *p != '{') return REFUSE;
    memset(x->seen, 0, (size_t)x->ncols);
    p = skip_ws(p + 1, e);
    int hint = 0;
    if (p < e && *p == '}') {
        p++;
    } else {
        for (;;) {
            const char *k;
            Py_ssize_t kn;
            if (p >= e || *p != '"') return REFUSE;
            int i;
            Col *h = &x->cols[hint];
            if (e - p > h->name_len + 1 && p[h->name_len + 1] == '"' && same(p + 1, h->name, h->name_len)) {
                /* the field that usually comes next: its name (valid UTF-8 without '"', '\\' or a
                 * control character) spelled without an escape is this key */
                i = hint;
                p += h->name_len + 2;
            } else {
                if ((r = plain_string(&p, e, &k, &kn))) return r;
                i = find_col(x, k, kn, hint);
            }
            if (i < 0 || x->seen[i]) return REFUSE; /* unknown field, duplicate key */
            x->seen[i] = 1;
            hint = i + 1 < x->ncols ? i + 1 : 0;
            p = skip_ws(p, e);
            if (p >= e || *p != ':') return REFUSE;
            p = skip_ws(p + 1, e);
            int valid;
            if ((r = column_value(&x->cols[i], &p, e, &valid))) return r;
            if ((r = end_row(&x->cols[i], valid))) return r;
            int more = next_member(&p, e, '}');
            if (more < 0) return REFUSE;
            if (more) continue;
            break;
        }
    }
    for (int i = 0; i < x->ncols; i++) {
        if (x->seen[i]) continue;
        if (x->cols[i].flags & F_REQUIRED) return REFUSE;
        /* a JSON-text field left out is null: refused (as the msgspec path does) when the schema
         * does not allow null there */
        if (x->cols[i].kind == 'j' && !(x->cols[i].flags & F_NULL)) return REFUSE;
        if ((r = end_row(&x->cols[i], 0))) return r; /* left out: null, as the dict path reads it */
    }
    *pp = p;
    return OK;
}

/* One line: 'R' (a row was added), 'O' (another message type), or REFUSE. */
static int scan_line(Ctx *x, const char *p, const char *e, char *kind) {
    int r;
    const char *k, *v;
    Py_ssize_t kn, vn;
    p = skip_ws(p, e);
    if (p >= e || *p != '{') return REFUSE;
    p = skip_ws(p + 1, e);
    if (p >= e || *p != '"') return REFUSE;
    if ((r = plain_string(&p, e, &k, &kn))) return r;
    if (kn != 4 || memcmp(k, "type", 4)) return REFUSE; /* "type" first, or the Python path */
    p = skip_ws(p, e);
    if (p >= e || *p != ':') return REFUSE;
    p = skip_ws(p + 1, e);
    if (p >= e || *p != '"') return REFUSE;
    if ((r = plain_string(&p, e, &v, &vn))) return r;
    if (vn != 6 || memcmp(v, "RECORD", 6)) {
        *kind = 'O'; /* the caller decodes it (a STATE message, or the Python path) */
        return OK;
    }
    int have_stream = 0, have_record = 0;
    for (;;) {
        p = skip_ws(p, e);
        if (p >= e) return REFUSE;
        if (*p == '}') {
            p++;
            break;
        }
        if (*p != ',') return REFUSE;
        p = skip_ws(p + 1, e);
        if (p >= e || *p != '"') return REFUSE;
        if ((r = plain_string(&p, e, &k, &kn))) return r;
        p = skip_ws(p, e);
        if (p >= e || *p != ':') return REFUSE;
        p = skip_ws(p + 1, e);
        if (kn == 4 && memcmp(k, "type", 4) == 0) return REFUSE; /* a duplicate */
        if (kn == 6 && memcmp(k, "stream", 6) == 0) {
            if (have_stream || p >= e || *p != '"') return REFUSE;
            have_stream = 1;
            if ((r = plain_string(&p, e, &v, &vn))) return r;
            if (vn != x->stream_len || !same(v, x->stream, vn)) return REFUSE;
        } else if (kn == 6 && memcmp(k, "record", 6) == 0) {
            if (have_record) return REFUSE;
            have_record = 1;
            if ((r = scan_record(x, &p, e))) return r;
        } else {
            if ((r = skip_value(&p, e, 0))) return r; /* e.g. time_extracted: not read */
        }
    }
    p = skip_ws(p, e);
    if (p != e || !have_stream || !have_record) return REFUSE;
    *kind = 'R';
    return OK;
}

static PyObject *bits_from_bytes(const Buf *b, Py_ssize_t n) {
    PyObject *out = PyBytes_FromStringAndSize(NULL, (n + 7) / 8);
    if (!out) return NULL;
    unsigned char *o = (unsigned char *)PyBytes_AS_STRING(out);
    memset(o, 0, (size_t)((n + 7) / 8));
    const char *s = b->p;
    for (Py_ssize_t i = 0; i < n; i++)
        if (s[i]) o[i >> 3] |= (unsigned char)(1u << (i & 7));
    return out;
}

static PyObject *column_tuple(Col *c, Py_ssize_t rows) {
    PyObject *valid = NULL, *data = NULL, *offsets = NULL;
    if (c->nulls) {
        valid = bits_from_bytes(&c->valid, rows);
        if (!valid) return NULL;
    } else {
        valid = Py_NewRef(Py_None);
    }
    if (c->kind == 'b')
        data = bits_from_bytes(&c->data, rows);
    else
        data = PyBytes_FromStringAndSize(c->data.p ? c->data.p : "", c->data.len);
    if (!data) goto fail;
    if (c->kind == 's' || c->kind == 'j')
        offsets = PyBytes_FromStringAndSize(c->offsets.p, c->offsets.len);
    else
        offsets = Py_NewRef(Py_None);
    if (!offsets) goto fail;
    return Py_BuildValue("(nNNNn)", c->nulls, valid, data, offsets, c->rebuilt);
fail:
    Py_XDECREF(valid);
    Py_XDECREF(data);
    return NULL;
}

/* The list of every column's tuple (column_tuple), or NULL (a Python error set). */
static PyObject *column_list(Col *cols, Py_ssize_t ncols, Py_ssize_t rows) {
    PyObject *columns = PyList_New(ncols);
    if (!columns) return NULL;
    for (Py_ssize_t i = 0; i < ncols; i++) {
        PyObject *t = column_tuple(&cols[i], rows);
        if (!t) {
            Py_DECREF(columns);
            return NULL;
        }
        PyList_SET_ITEM(columns, i, t);
    }
    return columns;
}

static Col *cols_new(PyObject *names, const char *kinds, const char *flags, Py_ssize_t ncols);

static PyObject *scan(PyObject *self, PyObject *args) {
    PyObject *lines, *names;
    const char *stream, *kinds, *flags;
    Py_ssize_t stream_len, nkinds, nflags;
    if (!PyArg_ParseTuple(args, "Oy#O!y#y#", &lines, &stream, &stream_len, &PyTuple_Type, &names, &kinds,
                          &nkinds, &flags, &nflags))
        return NULL;
    /* a list of lines, or the bytes of a block of lines (each ending with a newline but perhaps the
     * last): then the bounds of each line are returned too */
    int is_data = PyBytes_Check(lines);
    if (!is_data && !PyList_Check(lines)) {
        PyErr_SetString(PyExc_TypeError, "lines must be a list of bytes or bytes");
        return NULL;
    }
    const char *data = is_data ? PyBytes_AS_STRING(lines) : NULL;
    Py_ssize_t data_len = is_data ? PyBytes_GET_SIZE(lines) : 0;
    Buf bounds = {0};
    Py_ssize_t ncols = PyTuple_GET_SIZE(names);
    if (nkinds != ncols || nflags != ncols || ncols <= 0 || ncols > 4096) {
        PyErr_SetString(PyExc_ValueError, "names, kinds and flags must have one entry per field");
        return NULL;
    }
    Py_ssize_t nlines = 0;
    if (is_data) {
        for (const char *q = data, *end = data + data_len; q < end; nlines++) {
            const char *nl = memchr(q, '\n', (size_t)(end - q));
            q = nl ? nl + 1 : end;
        }
    } else {
        nlines = PyList_GET_SIZE(lines);
    }
    Col *cols = cols_new(names, kinds, flags, ncols); /* (NULL, or a Python error set: goto done) */
    unsigned char *seen = PyMem_Malloc((size_t)ncols);
    PyObject *line_kinds = PyBytes_FromStringAndSize(NULL, nlines);
    PyObject *result = NULL;
    if (!cols || PyErr_Occurred() || !seen || !line_kinds) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        goto done;
    }
    Ctx x = {stream, stream_len, cols, (int)ncols, seen};
    char *lk = PyBytes_AS_STRING(line_kinds);
    Py_ssize_t rows = 0;
    const char *q = data;
    for (Py_ssize_t i = 0; i < nlines; i++) {
        const char *p, *pe;
        if (is_data) {
            const char *end = data + data_len;
            const char *nl = memchr(q, '\n', (size_t)(end - q));
            p = q;
            pe = nl ? nl : end;
            q = nl ? nl + 1 : end;
            int64_t b[2] = {(int64_t)(p - data), (int64_t)(pe - data)};
            if (buf_put(&bounds, b, sizeof b) < 0) {
                PyErr_NoMemory();
                goto done;
            }
        } else {
            PyObject *line = PyList_GET_ITEM(lines, i);
            if (!PyBytes_Check(line)) {
                result = Py_NewRef(Py_None);
                goto done;
            }
            p = PyBytes_AS_STRING(line);
            pe = p + PyBytes_GET_SIZE(line);
        }
        int r = scan_line(&x, p, pe, &lk[i]);
        if (r == ERR) {
            if (!PyErr_Occurred()) PyErr_NoMemory();
            goto done;
        }
        if (r == REFUSE) {
            result = Py_NewRef(Py_None);
            goto done;
        }
        if (lk[i] == 'R') rows++;
    }
    PyObject *columns = column_list(cols, ncols, rows);
    if (!columns) goto done;
    if (is_data) {
        PyObject *b = PyBytes_FromStringAndSize(bounds.p ? bounds.p : "", bounds.len);
        if (!b) {
            Py_DECREF(columns);
            goto done;
        }
        result = Py_BuildValue("(ONN)", line_kinds, columns, b);
    } else {
        result = Py_BuildValue("(ONO)", line_kinds, columns, Py_None);
    }
done:
    PyMem_RawFree(bounds.p);
    if (cols) {
        for (Py_ssize_t i = 0; i < ncols; i++) {
            PyMem_RawFree(cols[i].data.p);
            PyMem_RawFree(cols[i].valid.p);
            PyMem_RawFree(cols[i].offsets.p);
        }
        PyMem_Free(cols);
    }
    PyMem_Free(seen);
    Py_XDECREF(line_kinds);
    return result;
}

/* The column buffers of one scan: NULL (a Python error set) when the arguments are wrong. */
static Col *cols_new(PyObject *names, const char *kinds, const char *flags, Py_ssize_t ncols) {
    Col *cols = PyMem_Calloc((size_t)ncols, sizeof(Col));
    if (!cols) {
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < ncols; i++) {
        PyObject *nm = PyTuple_GET_ITEM(names, i);
        if (!PyBytes_Check(nm)) {
            PyErr_SetString(PyExc_TypeError, "names must be bytes");
            return cols;
        }
        cols[i].name = PyBytes_AS_STRING(nm);
        cols[i].name_len = PyBytes_GET_SIZE(nm);
        cols[i].kind = kinds[i];
        cols[i].flags = (unsigned char)flags[i];
        if (!kinds[i] || !strchr("ibsnj", kinds[i])) {
            PyErr_SetString(PyExc_ValueError, "unknown column kind");
            return cols;
        }
        if ((kinds[i] == 's' || kinds[i] == 'j')) {
            int32_t zero = 0;
            if (buf_put(&cols[i].offsets, &zero, 4) < 0) {
                PyErr_NoMemory();
                return cols;
            }
        }
    }
    return cols;
}

static void cols_free(Col *cols, Py_ssize_t ncols) {
    if (!cols) return;
    for (Py_ssize_t i = 0; i < ncols; i++) {
        PyMem_RawFree(cols[i].data.p);
        PyMem_RawFree(cols[i].valid.p);
        PyMem_RawFree(cols[i].offsets.p);
    }
    PyMem_Free(cols);
}

/* The records array of a page body: each record object into the columns, its span into spans. */
static int scan_records(Ctx *x, const char **pp, const char *e, const char *body, Buf *spans, Py_ssize_t *rows) {
    const char *p = *pp;
    int r;
    if (p >= e || *p != '[') return REFUSE;
    p = skip_ws(p + 1, e);
    if (p < e && *p == ']') {
        *pp = p + 1;
        return OK;
    }
    for (;;) {
        const char *s = p;
        if ((r = scan_record(x, &p, e))) return r;
        int64_t b[2] = {(int64_t)(s - body), (int64_t)(p - body)};
        if (buf_put(spans, b, sizeof b) < 0) return ERR;
        (*rows)++;
        int more = next_member(&p, e, ']');
        if (more < 0) return REFUSE;
        if (more) continue;
        break;
    }
    *pp = p;
    return OK;
}

/* A page body's top-level object: the records into the columns, the other keys' value spans. */
static int page_body(Ctx *x, const char *body, Py_ssize_t body_len, const char *key, Py_ssize_t key_len,
                     const char **oname, const Py_ssize_t *olen, Py_ssize_t nothers, const char **ostart,
                     const char **oend, Buf *spans, Py_ssize_t *rows) {
    const char *p = body, *e = body + body_len;
    int have_records = 0, r;
    p = skip_ws(p, e);
    if (p >= e || *p != '{') return REFUSE;
    p = skip_ws(p + 1, e);
    for (;;) {
        const char *k;
        Py_ssize_t kn;
        if (p >= e || *p != '"') return REFUSE; /* (also an object without keys: no records key) */
        if ((r = plain_string(&p, e, &k, &kn))) return r;
        p = skip_ws(p, e);
        if (p >= e || *p != ':') return REFUSE;
        p = skip_ws(p + 1, e);
        if (kn == key_len && same(k, key, kn)) {
            if (have_records) return REFUSE; /* a duplicate key */
            have_records = 1;
            if ((r = scan_records(x, &p, e, body, spans, rows))) return r;
        } else {
            Py_ssize_t j = 0;
            for (; j < nothers; j++)
                if (olen[j] == kn && same(oname[j], k, kn)) break;
            if (j == nothers || ostart[j]) return REFUSE; /* a key not named, a duplicate key */
            ostart[j] = p;
            if ((r = skip_value(&p, e, 0))) return r;
            oend[j] = p;
        }
        int more = next_member(&p, e, '}');
        if (more < 0) return REFUSE;
        if (more) continue;
        break;
    }
    p = skip_ws(p, e);
    if (p != e || !have_records) return REFUSE;
    return OK;
}

static PyObject *scan_page(PyObject *self, PyObject *args) {
    PyObject *names, *others;
    const char *body, *key, *kinds, *flags;
    Py_ssize_t body_len, key_len, nkinds, nflags;
    if (!PyArg_ParseTuple(args, "y#y#O!y#y#O!", &body, &body_len, &key, &key_len, &PyTuple_Type, &names, &kinds,
                          &nkinds, &flags, &nflags, &PyTuple_Type, &others))
        return NULL;
    Py_ssize_t ncols = PyTuple_GET_SIZE(names), nothers = PyTuple_GET_SIZE(others);
    if (nkinds != ncols || nflags != ncols || ncols <= 0 || ncols > 4096) {
        PyErr_SetString(PyExc_ValueError, "names, kinds and flags must have one entry per field");
        return NULL;
    }
    if (nothers > MAX_KEYS) Py_RETURN_NONE;
    for (Py_ssize_t i = 0; i < nothers; i++) {
        if (!PyBytes_Check(PyTuple_GET_ITEM(others, i))) {
            PyErr_SetString(PyExc_TypeError, "others must be bytes");
            return NULL;
        }
    }
    Col *cols = cols_new(names, kinds, flags, ncols);
    unsigned char *seen = PyMem_Malloc((size_t)ncols);
    Buf spans = {0};
    const char *ostart[MAX_KEYS], *oend[MAX_KEYS];
    for (Py_ssize_t i = 0; i < nothers; i++) ostart[i] = oend[i] = NULL;
    PyObject *result = NULL;
    if (!seen) PyErr_NoMemory();
    if (PyErr_Occurred()) goto done;
    const char *oname[MAX_KEYS];
    Py_ssize_t olen[MAX_KEYS];
    for (Py_ssize_t i = 0; i < nothers; i++) {
        oname[i] = PyBytes_AS_STRING(PyTuple_GET_ITEM(others, i));
        olen[i] = PyBytes_GET_SIZE(PyTuple_GET_ITEM(others, i));
    }
    Ctx x = {NULL, 0, cols, (int)ncols, seen};
    Py_ssize_t rows = 0;
    /* the body (immutable, held by args) read without the GIL: the other thread (a paginator's
     * reader, or the one converting the last batch) runs meanwhile */
    released = PyEval_SaveThread();
    int r = page_body(&x, body, body_len, key, key_len, oname, olen, nothers, ostart, oend, &spans, &rows);
    PyEval_RestoreThread(released);
    released = NULL;
    if (r == ERR) {
        PyErr_NoMemory();
        goto done;
    }
    if (r == REFUSE) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    {
        PyObject *columns = column_list(cols, ncols, rows);
        if (!columns) goto done;
        PyObject *texts = PyTuple_New(nothers);
        if (!texts) {
            Py_DECREF(columns);
            goto done;
        }
        for (Py_ssize_t i = 0; i < nothers; i++) {
            PyObject *t = ostart[i] ? PyBytes_FromStringAndSize(ostart[i], oend[i] - ostart[i]) : Py_NewRef(Py_None);
            if (!t) {
                Py_DECREF(columns);
                Py_DECREF(texts);
                goto done;
            }
            PyTuple_SET_ITEM(texts, i, t);
        }
        PyObject *sp = PyBytes_FromStringAndSize(spans.p ? spans.p : "", spans.len);
        if (!sp) {
            Py_DECREF(columns);
            Py_DECREF(texts);
            goto done;
        }
        result = Py_BuildValue("(nNNN)", rows, columns, texts, sp);
        goto done;
    }
done:
    PyMem_RawFree(spans.p);
    cols_free(cols, ncols);
    PyMem_Free(seen);
    return result;
}

/* join(parts, kinds) -> columns: the rows [lo, lo + n) of each part's columns (a part: (columns, lo,
 * n), columns as scan_page gives them), one after the other, as one set of column tuples (rebuilt:
 * the parts' sum). */
static PyObject *join(PyObject *self, PyObject *args) {
    PyObject *parts;
    const char *kinds;
    Py_ssize_t ncols;
    if (!PyArg_ParseTuple(args, "O!y#", &PyList_Type, &parts, &kinds, &ncols)) return NULL;
    Py_ssize_t nparts = PyList_GET_SIZE(parts), total = 0;
    for (Py_ssize_t k = 0; k < nparts; k++) {
        PyObject *t = PyList_GET_ITEM(parts, k), *cols;
        Py_ssize_t lo, n;
        if (!PyTuple_Check(t) || !PyArg_ParseTuple(t, "O!nn", &PyList_Type, &cols, &lo, &n)) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "a part is (columns, lo, n)");
            return NULL;
        }
        if (PyList_GET_SIZE(cols) != ncols || lo < 0 || n < 0) {
            PyErr_SetString(PyExc_ValueError, "a part's columns do not match kinds");
            return NULL;
        }
        total += n;
    }
    if (total > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "too many rows");
        return NULL;
    }
    PyObject *out = PyList_New(ncols);
    if (!out) return NULL;
    for (Py_ssize_t c = 0; c < ncols; c++) {
        char kind = kinds[c];
        int text = kind == 's' || kind == 'j';
        Py_ssize_t dlen = 0, rebuilt = 0;
        int any_nulls = 0;
        /* sizes first (and the parts' buffers checked against their rows) */
        for (Py_ssize_t k = 0; k < nparts; k++) {
            PyObject *t = PyList_GET_ITEM(parts, k);
            PyObject *col = PyList_GET_ITEM(PyTuple_GET_ITEM(t, 0), c);
            Py_ssize_t lo = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 1)), n = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 2));
            Py_ssize_t nulls, rb;
            PyObject *valid, *data, *offsets;
            if (!PyTuple_Check(col) || !PyArg_ParseTuple(col, "nOOOn", &nulls, &valid, &data, &offsets, &rb)) goto bad;
            if (!PyBytes_Check(data) || (valid != Py_None && !PyBytes_Check(valid))) goto bad;
            if (valid != Py_None && PyBytes_GET_SIZE(valid) * 8 < lo + n) goto bad;
            if (valid != Py_None) any_nulls = 1;
            Py_ssize_t dn = PyBytes_GET_SIZE(data);
            if (text) {
                if (!PyBytes_Check(offsets) || PyBytes_GET_SIZE(offsets) < 4 * (lo + n + 1)) goto bad;
                const int32_t *off = (const int32_t *)PyBytes_AS_STRING(offsets);
                if (off[lo] < 0 || off[lo] > off[lo + n] || off[lo + n] > dn) goto bad;
                dlen += off[lo + n] - off[lo];
            } else if (kind == 'b') {
                if (dn * 8 < lo + n) goto bad;
            } else if (kind == 'i' || kind == 'n') {
                if (dn < 8 * (lo + n)) goto bad;
            } else {
                goto bad;
            }
            rebuilt += rb;
        }
        if (text && dlen > INT32_MAX) {
            PyErr_SetString(PyExc_ValueError, "more than 2 GiB of text in one column");
            goto fail;
        }
        Py_ssize_t vbytes = (total + 7) / 8;
        PyObject *vout = PyBytes_FromStringAndSize(NULL, vbytes);
        PyObject *dout = PyBytes_FromStringAndSize(
            NULL, text ? dlen : kind == 'b' ? vbytes : 8 * total);
        PyObject *oout = text ? PyBytes_FromStringAndSize(NULL, 4 * (total + 1)) : Py_NewRef(Py_None);
        if (!vout || !dout || !oout) {
            Py_XDECREF(vout);
            Py_XDECREF(dout);
            Py_XDECREF(oout);
            goto fail;
        }
        unsigned char *vo = (unsigned char *)PyBytes_AS_STRING(vout);
        char *dO = PyBytes_AS_STRING(dout);
        int32_t *oo = text ? (int32_t *)PyBytes_AS_STRING(oout) : NULL;
        memset(vo, 0, (size_t)vbytes);
        if (kind == 'b') memset(dO, 0, (size_t)vbytes);
        Py_ssize_t row = 0, nulls = 0, at = 0;
        if (text) oo[0] = 0;
        for (Py_ssize_t k = 0; k < nparts; k++) {
            PyObject *t = PyList_GET_ITEM(parts, k);
            PyObject *col = PyList_GET_ITEM(PyTuple_GET_ITEM(t, 0), c);
            Py_ssize_t lo = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 1)), n = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 2));
            PyObject *valid = PyTuple_GET_ITEM(col, 1), *data = PyTuple_GET_ITEM(col, 2);
            const unsigned char *vi = valid == Py_None ? NULL : (const unsigned char *)PyBytes_AS_STRING(valid);
            const char *di = PyBytes_AS_STRING(data);
            for (Py_ssize_t i = 0; any_nulls && i < n; i++) { /* (no part with a null: no bitmap) */
                Py_ssize_t src = lo + i, dst = row + i;
                if (!vi || (vi[src >> 3] >> (src & 7)) & 1)
                    vo[dst >> 3] |= (unsigned char)(1u << (dst & 7));
                else
                    nulls++;
            }
            if (text) {
                const int32_t *off = (const int32_t *)PyBytes_AS_STRING(PyTuple_GET_ITEM(col, 3));
                int32_t base = off[lo];
                memcpy(dO + at, di + base, (size_t)(off[lo + n] - base));
                for (Py_ssize_t i = 1; i <= n; i++) oo[row + i] = (int32_t)(at + off[lo + i] - base);
                at += off[lo + n] - base;
            } else if (kind == 'b') {
                const unsigned char *bi = (const unsigned char *)di;
                for (Py_ssize_t i = 0; i < n; i++) {
                    Py_ssize_t src = lo + i, dst = row + i;
                    if ((bi[src >> 3] >> (src & 7)) & 1) dO[dst >> 3] |= (char)(1u << (dst & 7));
                }
            } else {
                memcpy(dO + 8 * row, di + 8 * lo, (size_t)(8 * n));
            }
            row += n;
        }
        if (!nulls) {
            Py_DECREF(vout);
            vout = Py_NewRef(Py_None);
        }
        PyObject *tup = Py_BuildValue("(nNNNn)", nulls, vout, dout, oout, rebuilt);
        if (!tup) goto fail;
        PyList_SET_ITEM(out, c, tup);
    }
    return out;
bad:
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "a part's column buffers do not match its rows");
fail:
    Py_DECREF(out);
    return NULL;
}

typedef struct {
    const char *k, *v;
    Py_ssize_t kn, vn;
} Field;

/* Fields sorted by key bytes (insertion: a record or an object holds a few); REFUSE on a duplicate. */
static int field_insert(Field *f, int nf, const char *k, Py_ssize_t kn, const char *v, Py_ssize_t vn) {
    int j = nf;
    while (j > 0) {
        Field *q = &f[j - 1];
        Py_ssize_t m = q->kn < kn ? q->kn : kn;
        int c = memcmp(q->k, k, (size_t)m);
        if (c == 0 && q->kn == kn) return REFUSE;
        if (c < 0 || (c == 0 && q->kn < kn)) break;
        f[j] = f[j - 1];
        j--;
    }
    f[j].k = k;
    f[j].kn = kn;
    f[j].v = v;
    f[j].vn = vn;
    return OK;
}

/* A value checked by canonical_value (compact, spelled as orjson writes it) written to out with the
 * keys of its objects in sorted order (orjson's OPT_SORT_KEYS: by code point, the UTF-8 byte order
 * of keys without an escape); REFUSE on a key with an escape. */
static int write_sorted(const char *p, const char *e, Buf *out, int depth) {
    if (p >= e || depth > MAX_DEPTH) return REFUSE;
    if (*p == '{') {
        Field f[MAX_KEYS];
        int nf = 0;
        p++;
        if (*p != '}') {
            for (;;) {
                const char *k, *v;
                Py_ssize_t kn;
                if (p >= e || *p != '"' || nf >= MAX_KEYS) return REFUSE;
                if (plain_string(&p, e, &k, &kn)) return REFUSE; /* a key with an escape */
                if (p >= e || *p != ':') return REFUSE;
                v = ++p;
                int t;
                if (canonical_value(&p, e, depth + 1, &t)) return REFUSE;
                if (field_insert(f, nf, k, kn, v, p - v)) return REFUSE;
                nf++;
                if (p < e && *p == ',') {
                    p++;
                    continue;
                }
                if (p < e && *p == '}') break;
                return REFUSE;
            }
        }
        if (buf_put(out, "{", 1) < 0) return ERR;
        for (int j = 0; j < nf; j++) {
            if ((j && buf_put(out, ",", 1) < 0) || buf_put(out, "\"", 1) < 0 || buf_put(out, f[j].k, f[j].kn) < 0 ||
                buf_put(out, "\":", 2) < 0)
                return ERR;
            int r = write_sorted(f[j].v, f[j].v + f[j].vn, out, depth + 1);
            if (r) return r;
        }
        return buf_put(out, "}", 1) < 0 ? ERR : OK;
    }
    if (*p == '[') {
        if (buf_put(out, "[", 1) < 0) return ERR;
        p++;
        if (*p == ']') return buf_put(out, "]", 1) < 0 ? ERR : OK;
        for (;;) {
            const char *v = p;
            int t;
            if (canonical_value(&p, e, depth + 1, &t)) return REFUSE;
            int r = write_sorted(v, p, out, depth + 1);
            if (r) return r;
            if (p < e && *p == ',') {
                if (buf_put(out, ",", 1) < 0) return ERR;
                p++;
                continue;
            }
            if (p < e && *p == ']') return buf_put(out, "]", 1) < 0 ? ERR : OK;
            return REFUSE;
        }
    }
    return buf_put(out, p, e - p) < 0 ? ERR : OK; /* a string, a number, true, false, null */
}

/* canonical_records(body, spans, start, indexes) -> bytes | None: orjson.dumps(records,
 * option=OPT_SORT_KEYS) of the records whose (start, end) spans in body are spans[start + i] for i
 * in indexes, written from their texts: the keys of each record and of the objects in it (plain, no
 * escape) in sorted order, every value spelled as orjson writes it (canonical_value); None when one
 * is not (the caller decodes and writes them). */
/* The records [rs[t], re[t]) written into out as canonical_records writes them. */
static int write_records(const char **rs, const char **re, Py_ssize_t n, Buf *out) {
    Field f[MAX_KEYS];
    int r;
    if (buf_put(out, "[", 1) < 0) return ERR;
    for (Py_ssize_t t = 0; t < n; t++) {
        const char *p = rs[t], *e = re[t];
        int nf = 0;
        if (p >= e || *p != '{') return REFUSE;
        p = skip_ws(p + 1, e);
        if (p < e && *p == '}') {
            p++;
        } else {
            for (;;) {
                const char *k;
                Py_ssize_t kn;
                if (p >= e || *p != '"' || nf >= MAX_KEYS) return REFUSE;
                if (plain_string(&p, e, &k, &kn)) return REFUSE; /* (no escape, valid UTF-8) */
                p = skip_ws(p, e);
                if (p >= e || *p != ':') return REFUSE;
                p = skip_ws(p + 1, e);
                const char *v = p;
                int type;
                if (canonical_value(&p, e, 0, &type)) return REFUSE;
                if (field_insert(f, nf, k, kn, v, p - v)) return REFUSE; /* a duplicate key */
                nf++;
                int more = next_member(&p, e, '}');
                if (more < 0) return REFUSE;
                if (more) continue;
                break;
            }
        }
        if (skip_ws(p, e) != e) return REFUSE;
        if ((t && buf_put(out, ",", 1) < 0) || buf_put(out, "{", 1) < 0) return ERR;
        for (int j = 0; j < nf; j++) {
            if ((j && buf_put(out, ",", 1) < 0) || buf_put(out, "\"", 1) < 0 || buf_put(out, f[j].k, f[j].kn) < 0 ||
                buf_put(out, "\":", 2) < 0)
                return ERR;
            if ((r = write_sorted(f[j].v, f[j].v + f[j].vn, out, 0))) return r;
        }
        if (buf_put(out, "}", 1) < 0) return ERR;
    }
    return buf_put(out, "]", 1) < 0 ? ERR : OK;
}

static PyObject *canonical_records(PyObject *self, PyObject *args) {
    const char *body, *spans;
    Py_ssize_t body_len, spans_len, start;
    PyObject *indexes;
    if (!PyArg_ParseTuple(args, "y#y#nO!", &body, &body_len, &spans, &spans_len, &start, &PyTuple_Type, &indexes))
        return NULL;
    Py_ssize_t nspans = spans_len / 16, nidx = PyTuple_GET_SIZE(indexes);
    const int64_t *sp = (const int64_t *)spans;
    const char **rs = PyMem_Malloc(sizeof(char *) * (size_t)(2 * nidx + 1));
    if (!rs) return PyErr_NoMemory();
    const char **re = rs + nidx;
    for (Py_ssize_t t = 0; t < nidx; t++) {
        Py_ssize_t i = PyLong_AsSsize_t(PyTuple_GET_ITEM(indexes, t));
        if (i == -1 && PyErr_Occurred()) {
            PyMem_Free(rs);
            return NULL;
        }
        i += start;
        if (i < 0 || i >= nspans || sp[2 * i] < 0 || sp[2 * i] > sp[2 * i + 1] || sp[2 * i + 1] > body_len) {
            PyMem_Free(rs);
            PyErr_SetString(PyExc_IndexError, "a record index outside the spans");
            return NULL;
        }
        rs[t] = body + sp[2 * i];
        re[t] = body + sp[2 * i + 1];
    }
    Buf out = {0};
    released = PyEval_SaveThread(); /* (no Python call in there: the float parser is not used) */
    int r = write_records(rs, re, nidx, &out);
    PyEval_RestoreThread(released);
    released = NULL;
    PyMem_Free(rs);
    PyObject *result = r == OK    ? PyBytes_FromStringAndSize(out.p, out.len)
                       : r == ERR ? PyErr_NoMemory()
                                  : Py_NewRef(Py_None);
    PyMem_RawFree(out.p);
    return result;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS,
     "scan(lines, stream, names, kinds, flags) -> None | (line_kinds, columns, bounds): RECORD lines of one "
     "stream into column buffers, or None when the Python path must read the block."},
    {"scan_page", scan_page, METH_VARARGS,
     "scan_page(body, key, names, kinds, flags, others) -> None | (rows, columns, texts, spans): the records of "
     "one JSON page body into column buffers, or None when the Python path must decode it."},
    {"canonical_records", canonical_records, METH_VARARGS,
     "canonical_records(body, spans, start, indexes) -> bytes | None: orjson.dumps(records, "
     "option=OPT_SORT_KEYS) of records of a page written from their texts, or None."},
    {"join", join, METH_VARARGS,
     "join(parts, kinds) -> columns: the rows [lo, lo + n) of each part (columns, lo, n), one after the other."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_recordscan", NULL, -1, methods};

PyMODINIT_FUNC PyInit__recordscan(void) {
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    if (PyModule_AddIntConstant(m, "F_REQUIRED", F_REQUIRED) < 0 || PyModule_AddIntConstant(m, "F_NULL", F_NULL) < 0 ||
        PyModule_AddIntConstant(m, "F_OBJECT", F_OBJECT) < 0 || PyModule_AddIntConstant(m, "F_ARRAY", F_ARRAY) < 0 ||
        PyModule_AddIntConstant(m, "F_STRING", F_STRING) < 0 || PyModule_AddIntConstant(m, "F_INT", F_INT) < 0 ||
        PyModule_AddIntConstant(m, "F_FLOAT", F_FLOAT) < 0 || PyModule_AddIntConstant(m, "F_BOOL", F_BOOL) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
