/* Python's empty native call (harness/probes.py): a C extension function that returns its argument at once,
 * the same kind of crossing as a call into torch's own extension (METH_O: one positional argument). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject* call(PyObject* self, PyObject* x) {
  (void)self;
  Py_INCREF(x);
  return x;
}

static PyMethodDef methods[] = {{"call", call, METH_O, "Return the argument."}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "empty_ext", "An empty native call.", -1, methods};

PyMODINIT_FUNC PyInit_empty_ext(void) { return PyModule_Create(&module); }
