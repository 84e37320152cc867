/*
 * viabtc.stratum._submit: the common mining.submit line, read in C.
 *
 * Why: nine lines in ten a gateway reads are shares, and in Python a
 * share's line cost more than its check: JSON decoding into a dict, three
 * lookups, the type tests, three hex fields and two integers (about a
 * third of the gateway's CPU under load, docs/benchmarks.md).  Here one
 * pass over the bytes does all of it for the form every miner sends.
 *
 * Only that form is read: an object with exactly the keys "id" (an
 * integer of at most 18 digits), "method" ("mining.submit") and "params"
 * (five or six strings without escapes, of printable ASCII), in any order,
 * JSON whitespace anywhere between tokens; extranonce2 16 hex digits,
 * ntime and nonce 8, the version bits 1 to 8.  Anything else, valid or
 * not, gives None and the protocol reads the line the general way
 * (viabtc.stratum.protocol), which is the reference: tests check that
 * whatever this returns is what the general path reads from that line.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

typedef struct {
    const unsigned char *p;
    const unsigned char *end;
} cursor;

static void
skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n')) {
        c->p++;
    }
}

/* The next token is the character ch (consumed). */
static int
take(cursor *c, unsigned char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A string of printable ASCII without escapes: its bytes in [*start, *start + *len). */
static int
plain_string(cursor *c, const unsigned char **start, Py_ssize_t *len)
{
    const unsigned char *s;

    if (!take(c, '"')) {
        return 0;
    }
    s = c->p;
    while (c->p < c->end) {
        unsigned char ch = *c->p;
        if (ch == '"') {
            *start = s;
            *len = c->p - s;
            c->p++;
            return 1;
        }
        if (ch < 0x20 || ch > 0x7e || ch == '\\') {
            return 0;
        }
        c->p++;
    }
    return 0;
}

static int
hex_digit(unsigned char ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }
    return -1;
}

/* 1 to 8 hex digits as an unsigned 32-bit value; 0 if not that. */
static int
hex_u32(const unsigned char *s, Py_ssize_t len, unsigned long *value)
{
    unsigned long v = 0;
    Py_ssize_t i;

    if (len < 1 || len > 8) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        int d = hex_digit(s[i]);
        if (d < 0) {
            return 0;
        }
        v = (v << 4) | (unsigned long)d;
    }
    *value = v;
    return 1;
}

/* An unsigned JSON integer of 1 to 18 digits, no leading zero. */
static int
small_integer(cursor *c, long long *value)
{
    long long v = 0;
    const unsigned char *s;

    skip_ws(c);
    s = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (c->p - s == 18) {
            return 0; /* a 19th digit: beyond what is read here (and beyond 64 bits soon) */
        }
        v = v * 10 + (*c->p - '0');
        c->p++;
    }
    if (c->p == s || (*s == '0' && c->p - s > 1)) {
        return 0;
    }
    *value = v;
    return 1;
}

#define MAX_PARAMS 6

static int
read_params(cursor *c, const unsigned char **start, Py_ssize_t *len, int *count)
{
    int n = 0;

    if (!take(c, '[')) {
        return 0;
    }
    do {
        if (n == MAX_PARAMS || !plain_string(c, &start[n], &len[n])) {
            return 0;
        }
        n++;
    } while (take(c, ','));
    if (!take(c, ']') || n < 5) {
        return 0;
    }
    *count = n;
    return 1;
}

static int
key_is(const unsigned char *s, Py_ssize_t len, const char *name)
{
    return (size_t)len == strlen(name) && memcmp(s, name, (size_t)len) == 0;
}

PyDoc_STRVAR(parse_submit_doc,
"parse_submit(line) -> (id, account, job_id, extranonce2, ntime, nonce, version_bits) or None\n\n"
"A mining.submit line in the common form (see the module's comment), read:\n"
"id, ntime, nonce and version_bits (0 when absent) as integers, account\n"
"and job_id as str, extranonce2 as 8 bytes.  None for any other line.");

static PyObject *
parse_submit(PyObject *module, PyObject *arg)
{
    cursor c;
    const unsigned char *key, *method = NULL, *fields[MAX_PARAMS];
    Py_ssize_t key_len, method_len = 0, lens[MAX_PARAMS];
    int have_id = 0, have_params = 0, count = 0, i;
    long long msg_id = 0;
    unsigned long ntime, nonce, version_bits = 0;
    unsigned char extranonce2[8];

    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "line must be bytes");
        return NULL;
    }
    c.p = (const unsigned char *)PyBytes_AS_STRING(arg);
    c.end = c.p + PyBytes_GET_SIZE(arg);
    if (!take(&c, '{')) {
        Py_RETURN_NONE;
    }
    do {
        if (!plain_string(&c, &key, &key_len) || !take(&c, ':')) {
            Py_RETURN_NONE;
        }
        if (key_is(key, key_len, "id") && !have_id) {
            if (!small_integer(&c, &msg_id)) {
                Py_RETURN_NONE;
            }
            have_id = 1;
        }
        else if (key_is(key, key_len, "method") && method == NULL) {
            if (!plain_string(&c, &method, &method_len)) {
                Py_RETURN_NONE;
            }
        }
        else if (key_is(key, key_len, "params") && !have_params) {
            if (!read_params(&c, fields, lens, &count)) {
                Py_RETURN_NONE;
            }
            have_params = 1;
        }
        else {
            Py_RETURN_NONE;
        }
    } while (take(&c, ','));
    if (!take(&c, '}')) {
        Py_RETURN_NONE;
    }
    skip_ws(&c);
    if (c.p != c.end || !have_id || !have_params || method == NULL
        || !key_is(method, method_len, "mining.submit")) {
        Py_RETURN_NONE;
    }
    if (lens[2] != 16 || lens[3] != 8 || lens[4] != 8
        || !hex_u32(fields[3], 8, &ntime) || !hex_u32(fields[4], 8, &nonce)
        || (count == 6 && !hex_u32(fields[5], lens[5], &version_bits))) {
        Py_RETURN_NONE;
    }
    for (i = 0; i < 8; i++) {
        int high = hex_digit(fields[2][2 * i]), low = hex_digit(fields[2][2 * i + 1]);
        if (high < 0 || low < 0) {
            Py_RETURN_NONE;
        }
        extranonce2[i] = (unsigned char)((high << 4) | low);
    }
    return Py_BuildValue("(Ls#s#y#kkk)", msg_id, (const char *)fields[0], lens[0], (const char *)fields[1],
                         lens[1], (const char *)extranonce2, (Py_ssize_t)8, ntime, nonce, version_bits);
}

static PyMethodDef methods[] = {
    {"parse_submit", (PyCFunction)parse_submit, METH_O, parse_submit_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "viabtc.stratum._submit",
    "The common mining.submit line, read in one pass.",
    0,
    methods,
};

PyMODINIT_FUNC
PyInit__submit(void)
{
    return PyModuleDef_Init(&module);
}
