/*
 * viabtc.bitcoin._sha256d: double SHA-256 and the Stratum merkle fold in C.
 *
 * Why: a share check is 14 double hashes of one or two SHA-256 blocks
 * each.  Through hashlib every hash builds, copies and frees an OpenSSL
 * EVP context (OpenSSL 3.0), which costs several times the compression
 * itself; that overhead was half of the gateway's CPU under load
 * (docs/benchmarks.md).  Here each hash is OpenSSL's low-level
 * SHA256_Init/Update/Final on the stack (the same SHA-NI code, no context
 * allocation, no provider lookup), and the branch is folded in one call.
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

static PyObject *
fold_branch(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    unsigned char pair[2 * SHA256_DIGEST_LENGTH];
    PyObject *siblings;
    Py_ssize_t count, i;

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
    siblings = PySequence_Fast(args[1], "branch must be a sequence of 32-byte hashes");
    if (siblings == NULL) {
        return NULL;
    }
    memcpy(pair, PyBytes_AS_STRING(args[0]), SHA256_DIGEST_LENGTH);
    count = PySequence_Fast_GET_SIZE(siblings);
    for (i = 0; i < count; i++) {
        PyObject *sibling = PySequence_Fast_GET_ITEM(siblings, i);
        if (!PyBytes_Check(sibling)) {
            PyErr_SetString(PyExc_TypeError, "branch hashes must be bytes");
            Py_DECREF(siblings);
            return NULL;
        }
        if (PyBytes_GET_SIZE(sibling) != SHA256_DIGEST_LENGTH) {
            PyErr_SetString(PyExc_ValueError, "branch hashes must be 32 bytes");
            Py_DECREF(siblings);
            return NULL;
        }
        memcpy(pair + SHA256_DIGEST_LENGTH, PyBytes_AS_STRING(sibling), SHA256_DIGEST_LENGTH);
        double_sha256(pair, sizeof(pair), pair);
    }
    Py_DECREF(siblings);
    return PyBytes_FromStringAndSize((const char *)pair, SHA256_DIGEST_LENGTH);
}

static PyMethodDef methods[] = {
    {"sha256d", (PyCFunction)sha256d, METH_O, sha256d_doc},
    {"fold_branch", (PyCFunction)(void (*)(void))fold_branch, METH_FASTCALL, fold_branch_doc},
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
