/*
 * viabtc.bitcoin._sha256d: double SHA-256, the Stratum merkle fold and a
 * share's header in C.
 *
 * Why: a share check is 14 double hashes of one or two SHA-256 blocks
 * each.  Through hashlib every hash builds, copies and frees an OpenSSL
 * EVP context (OpenSSL 3.0), which costs several times the compression
 * itself; that overhead was half of the gateway's CPU under load
 * (docs/benchmarks.md).  Here each hash is OpenSSL's low-level
 * SHA256_Init/Update/Final on the stack (the same SHA-NI code, no context
 * allocation, no provider lookup), the branch is folded in one call, and
 * share_header makes a share's header and its hash in one call (the
 * coinbase hashed, the branch folded, the fields packed, the header hashed).
 *
 * The pure-Python functions in hashing.py and merkle.py stay the
 * reference: tests compare the two on arbitrary inputs, and they are what
 * runs when this module could not be built.
 */
#define PY_SSIZE_T_CLEAN
#define OPENSSL_SUPPRESS_DEPRECATED
#include <Python.h>
#include <openssl/sha.h>
#include <string.h>

static void
double_sha256(const void *data, size_t len, unsigned char out[SHA256_DIGEST_LENGTH])
{
    unsigned char first[SHA256_DIGEST_LENGTH];
    SHA256_CTX ctx;

    SHA256_Init(&ctx);
    SHA256_Update(&ctx, data, len);
    SHA256_Final(first, &ctx);
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, first, sizeof(first));
    SHA256_Final(out, &ctx);
}

PyDoc_STRVAR(sha256d_doc,
"sha256d(data) -> bytes\n\n"
"Double SHA-256 of a bytes-like object: block hashes, txids and merkle nodes.");

static PyObject *
sha256d(PyObject *module, PyObject *data)
{
    Py_buffer view;
    unsigned char out[SHA256_DIGEST_LENGTH];

    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    double_sha256(view.buf, (size_t)view.len, out);
    PyBuffer_Release(&view);
    return PyBytes_FromStringAndSize((const char *)out, sizeof(out));
}

PyDoc_STRVAR(fold_branch_doc,
"fold_branch(leaf, branch) -> bytes\n\n"
"The merkle root from a 32-byte leaf hash (a coinbase txid) and a Stratum\n"
"branch (a sequence of 32-byte hashes): the leaf is hashed with each\n"
"sibling in turn, sha256d(h + sibling).  ValueError for a hash that is\n"
"not 32 bytes, TypeError for one that is not bytes.");

static int fold(const unsigned char leaf[SHA256_DIGEST_LENGTH], PyObject *branch,
                unsigned char root[SHA256_DIGEST_LENGTH]);

static PyObject *
fold_branch(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    unsigned char root[SHA256_DIGEST_LENGTH];

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "fold_branch(leaf, branch) takes 2 arguments");
        return NULL;
    }
    if (!PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "leaf must be bytes");
        return NULL;
    }
    if (PyBytes_GET_SIZE(args[0]) != SHA256_DIGEST_LENGTH) {
        PyErr_SetString(PyExc_ValueError, "leaf must be 32 bytes");
        return NULL;
    }
    if (fold((const unsigned char *)PyBytes_AS_STRING(args[0]), args[1], root) < 0) {
        return NULL;
    }
    return PyBytes_FromStringAndSize((const char *)root, SHA256_DIGEST_LENGTH);
}

/* The leaf hashed with each 32-byte hash of branch in turn, into root; -1 with an error set. */
static int
fold(const unsigned char leaf[SHA256_DIGEST_LENGTH], PyObject *branch, unsigned char root[SHA256_DIGEST_LENGTH])
{
    unsigned char pair[2 * SHA256_DIGEST_LENGTH];
    PyObject *siblings;
    Py_ssize_t count, i;

    siblings = PySequence_Fast(branch, "branch must be a sequence of 32-byte hashes");
    if (siblings == NULL) {
        return -1;
    }
    memcpy(pair, leaf, SHA256_DIGEST_LENGTH);
    count = PySequence_Fast_GET_SIZE(siblings);
    for (i = 0; i < count; i++) {
        PyObject *sibling = PySequence_Fast_GET_ITEM(siblings, i);
        if (!PyBytes_Check(sibling)) {
            PyErr_SetString(PyExc_TypeError, "branch hashes must be bytes");
            Py_DECREF(siblings);
            return -1;
        }
        if (PyBytes_GET_SIZE(sibling) != SHA256_DIGEST_LENGTH) {
            PyErr_SetString(PyExc_ValueError, "branch hashes must be 32 bytes");
            Py_DECREF(siblings);
            return -1;
        }
        memcpy(pair + SHA256_DIGEST_LENGTH, PyBytes_AS_STRING(sibling), SHA256_DIGEST_LENGTH);
        double_sha256(pair, sizeof(pair), pair);
    }
    Py_DECREF(siblings);
    memcpy(root, pair, SHA256_DIGEST_LENGTH);
    return 0;
}

/* A Python int in 0 .. 2**32 - 1, little-endian at out; -1 with OverflowError set if outside. */
static int
put_u32(PyObject *value, unsigned char *out)
{
    unsigned long v = PyLong_AsUnsignedLong(value);

    if (v == (unsigned long)-1 && PyErr_Occurred()) {
        return -1;
    }
    if (v > 0xFFFFFFFFUL) {
        PyErr_SetString(PyExc_OverflowError, "header field outside 32 bits");
        return -1;
    }
    out[0] = (unsigned char)v;
    out[1] = (unsigned char)(v >> 8);
    out[2] = (unsigned char)(v >> 16);
    out[3] = (unsigned char)(v >> 24);
    return 0;
}

PyDoc_STRVAR(share_header_doc,
"share_header(coinbase, branch, version, prevhash, ntime, nbits, nonce) -> (header, hash)\n\n"
"The 80-byte block header a share makes and its double SHA-256: the merkle\n"
"root is the coinbase's txid folded with the Stratum branch.  OverflowError\n"
"for an integer field outside 32 bits, ValueError for a prevhash or branch\n"
"hash that is not 32 bytes, TypeError for a field of the wrong type.");

static PyObject *
share_header(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    unsigned char header[80], leaf[SHA256_DIGEST_LENGTH], hash[SHA256_DIGEST_LENGTH];
    Py_buffer coinbase;
    PyObject *result;

    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError,
                        "share_header(coinbase, branch, version, prevhash, ntime, nbits, nonce) takes 7 arguments");
        return NULL;
    }
    if (!PyBytes_Check(args[3]) || PyBytes_GET_SIZE(args[3]) != SHA256_DIGEST_LENGTH) {
        PyErr_SetString(PyExc_ValueError, "prevhash must be 32 bytes");
        return NULL;
    }
    if (put_u32(args[2], header) < 0 || put_u32(args[4], header + 68) < 0 || put_u32(args[5], header + 72) < 0
        || put_u32(args[6], header + 76) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &coinbase, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    double_sha256(coinbase.buf, (size_t)coinbase.len, leaf);
    PyBuffer_Release(&coinbase);
    memcpy(header + 4, PyBytes_AS_STRING(args[3]), SHA256_DIGEST_LENGTH);
    if (fold(leaf, args[1], header + 36) < 0) {
        return NULL;
    }
    double_sha256(header, sizeof(header), hash);
    result = PyTuple_New(2);
    if (result == NULL) {
        return NULL;
    }
    PyTuple_SET_ITEM(result, 0, PyBytes_FromStringAndSize((const char *)header, sizeof(header)));
    PyTuple_SET_ITEM(result, 1, PyBytes_FromStringAndSize((const char *)hash, sizeof(hash)));
    if (PyTuple_GET_ITEM(result, 0) == NULL || PyTuple_GET_ITEM(result, 1) == NULL) {
        Py_DECREF(result);
        return NULL;
    }
    return result;
}

static PyMethodDef methods[] = {
    {"sha256d", (PyCFunction)sha256d, METH_O, sha256d_doc},
    {"fold_branch", (PyCFunction)(void (*)(void))fold_branch, METH_FASTCALL, fold_branch_doc},
    {"share_header", (PyCFunction)(void (*)(void))share_header, METH_FASTCALL, share_header_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "viabtc.bitcoin._sha256d",
    "Double SHA-256 and the Stratum merkle fold through OpenSSL's low-level SHA-256.",
    0,
    methods,
};

PyMODINIT_FUNC
PyInit__sha256d(void)
{
    return PyModuleDef_Init(&module);
}
