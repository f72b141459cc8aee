/* aoti_minimal_ext: a small C extension that calls an AOTInductor model .so through its minimal ArrayRef entry point.

The package was compiled with aot_inductor.use_minimal_arrayref_interface=True, so its model .so exports
AOTInductorModelRunMinimalArrayrefInterfaceV2: a C function taking flat AOTInductorArrayRefTensor descriptors (data
pointer, sizes, strides, dtype, device) for the inputs and writing descriptors of its outputs, which point into the
.so's own thread-local buffers. Neither it nor AOTInductorModelCreateV2 is a documented public API: they are the
extern "C" functions torch/csrc/inductor/aoti_runtime/interface.h declares for the generated code.

Python gets three things (no torch header is included: the descriptor is declared here field for field, as the
header has it, and its layout checked at compile time):
  init(libtorch_path)        reads libtorch's dtype and device codes (aoti_torch_dtype_*, aoti_torch_device_type_cpu)
                             from the libtorch_cpu.so this process has loaded;
  Slot(inputs, out, ret)     one call's descriptors, made once: `inputs` a sequence of (buffer, shape, dtype name),
                             each buffer C-contiguous and holding exactly that shape; `out` a writable float32
                             buffer of the call's outputs, converted to float32 and concatenated; `ret` the object
                             a call returns (the caller's view of `out`);
  Model(so_path, name)       dlopen's the model .so (RTLD_NOW | RTLD_LOCAL) and makes one AOTInductorModel from the
                             weights embedded in it; Model.run(slot) is the call: one entry-point call on the slot's
                             descriptors, the outputs copied into the slot's `out`, `ret` returned. The GIL is held
                             throughout: calls from several threads never overlap, so they may share the model (an
                             AOTInductorModel does not handle concurrent runs).
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define MAX_DIMS 8 /* AOTI_ARRAYREF_TENSOR_MAX_DIMS */

/* struct AOTInductorArrayRefTensor (aoti_runtime/interface.h), field for field */
typedef struct {
  void* data;
  int64_t numel;
  int64_t sizes[MAX_DIMS];
  int64_t strides[MAX_DIMS];
  int32_t ndim;
  int32_t dtype;
  int32_t device_type;
  int32_t device_idx;
  int64_t reserved[4]; /* zero */
} Descriptor;

_Static_assert(sizeof(Descriptor) == 192, "AOTInductorArrayRefTensor is 192 bytes in interface.h");
_Static_assert(offsetof(Descriptor, strides) == 80 && offsetof(Descriptor, ndim) == 144 &&
                   offsetof(Descriptor, device_idx) == 156 && offsetof(Descriptor, reserved) == 160,
               "AOTInductorArrayRefTensor's layout");

typedef int32_t (*create_fn)(void** model, const void* pairs, size_t num_pairs);
typedef int32_t (*run_fn)(void* model, int32_t num_inputs, const Descriptor* inputs, int32_t num_outputs,
                          Descriptor* outputs);
typedef int32_t (*delete_fn)(void* model);
typedef int32_t (*num_outputs_fn)(void* model, size_t* count);
typedef int32_t (*last_error_fn)(const char** message);
typedef int32_t (*code_fn)(void);

/* libtorch's codes, read by init() */
enum { F32, F64, I64, I32, BOOL, NDTYPES };
static const char* const DTYPE_NAMES[NDTYPES] = {"float32", "float64", "int64", "int32", "bool"};
static const Py_ssize_t DTYPE_BYTES[NDTYPES] = {4, 8, 8, 4, 1};
static int32_t dtype_codes[NDTYPES];
static int32_t cpu_code;
static int initialised;

static PyObject* init(PyObject* module, PyObject* arg) {
  (void)module;
  const char* path = PyUnicode_AsUTF8(arg);
  if (path == NULL) return NULL;
  void* lib = dlopen(path, RTLD_NOW | RTLD_NOLOAD); /* the one this process has mapped: no second copy */
  if (lib == NULL) {
    PyErr_Format(PyExc_RuntimeError, "libtorch %s is not loaded in this process (import torch first): %s", path,
                 dlerror());
    return NULL;
  }
  static const char* const fns[NDTYPES] = {"aoti_torch_dtype_float32", "aoti_torch_dtype_float64",
                                            "aoti_torch_dtype_int64", "aoti_torch_dtype_int32",
                                            "aoti_torch_dtype_bool"};
  for (int k = 0; k <= NDTYPES; ++k) {
    const char* name = k < NDTYPES ? fns[k] : "aoti_torch_device_type_cpu";
    code_fn f = (code_fn)dlsym(lib, name);
    if (f == NULL) {
      PyErr_Format(PyExc_RuntimeError, "libtorch %s has no %s", path, name);
      return NULL;
    }
    if (k < NDTYPES)
      dtype_codes[k] = f();
    else
      cpu_code = f();
  }
  initialised = 1;
  Py_RETURN_NONE;
}

static int dtype_index(int32_t code) {
  for (int k = 0; k < NDTYPES; ++k)
    if (dtype_codes[k] == code) return k;
  return -1;
}

/* ---- Slot: one call's input descriptors and output place ---- */

typedef struct {
  PyObject_HEAD
  int32_t num_inputs;
  Descriptor* inputs;
  Py_buffer* views; /* the input buffers, held while the slot lives */
  Py_buffer out;
  float* out_data;
  int64_t out_count;
  PyObject* ret;
} Slot;

static void Slot_dealloc(Slot* self) {
  for (int32_t k = 0; k < self->num_inputs; ++k)
    if (self->views[k].obj != NULL) PyBuffer_Release(&self->views[k]);
  if (self->out.obj != NULL) PyBuffer_Release(&self->out);
  PyMem_Free(self->views);
  PyMem_Free(self->inputs);
  Py_XDECREF(self->ret);
  Py_TYPE(self)->tp_free((PyObject*)self);
}

/* One input's descriptor: row-major over the buffer, which must hold exactly `shape` of `dtype`. */
static int describe_input(Slot* self, int32_t k, PyObject* item) {
  PyObject *buffer, *shape;
  const char* dtype;
  if (!PyArg_ParseTuple(item, "OOs", &buffer, &shape, &dtype)) return -1;
  int d = -1;
  for (int j = 0; j < NDTYPES; ++j)
    if (strcmp(dtype, DTYPE_NAMES[j]) == 0) d = j;
  if (d < 0) {
    PyErr_Format(PyExc_ValueError, "input %d: dtype '%s' is not one of float32, float64, int64, int32, bool", k,
                 dtype);
    return -1;
  }
  PyObject* dims = PySequence_Fast(shape, "an input's shape must be a sequence of ints");
  if (dims == NULL) return -1;
  const Py_ssize_t ndim = PySequence_Fast_GET_SIZE(dims);
  if (ndim > MAX_DIMS) {
    Py_DECREF(dims);
    PyErr_Format(PyExc_ValueError, "input %d has %zd dimensions, more than the %d a descriptor holds", k, ndim,
                 MAX_DIMS);
    return -1;
  }
  Descriptor* desc = &self->inputs[k];
  memset(desc, 0, sizeof *desc); /* the reserved fields must be 0 */
  int64_t numel = 1;
  for (Py_ssize_t j = 0; j < ndim; ++j) {
    desc->sizes[j] = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(dims, j));
    numel *= desc->sizes[j];
  }
  Py_DECREF(dims);
  if (PyErr_Occurred()) return -1;
  int64_t stride = 1;
  for (Py_ssize_t j = ndim; j-- > 0;) {
    desc->strides[j] = stride;
    stride *= desc->sizes[j];
  }
  if (PyObject_GetBuffer(buffer, &self->views[k], PyBUF_C_CONTIGUOUS) < 0) return -1;
  if (self->views[k].len != numel * DTYPE_BYTES[d]) {
    PyErr_Format(PyExc_ValueError, "input %d: its buffer has %zd bytes, a %s tensor of %lld elements needs %lld", k,
                 self->views[k].len, dtype, (long long)numel, (long long)(numel * DTYPE_BYTES[d]));
    return -1;
  }
  desc->data = self->views[k].buf;
  desc->numel = numel;
  desc->ndim = (int32_t)ndim;
  desc->dtype = dtype_codes[d];
  desc->device_type = cpu_code;
  desc->device_idx = -1; /* a CPU tensor's index */
  return 0;
}

static int Slot_init(Slot* self, PyObject* args, PyObject* kwargs) {
  static char* names[] = {"inputs", "out", "ret", NULL};
  PyObject *inputs, *out, *ret;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOO", names, &inputs, &out, &ret)) return -1;
  if (!initialised) {
    PyErr_SetString(PyExc_RuntimeError, "call init(libtorch_path) before making slots");
    return -1;
  }
  if (self->inputs != NULL) {
    PyErr_SetString(PyExc_RuntimeError, "a slot is made once");
    return -1;
  }
  PyObject* items = PySequence_Fast(inputs, "inputs must be a sequence of (buffer, shape, dtype)");
  if (items == NULL) return -1;
  const Py_ssize_t n = PySequence_Fast_GET_SIZE(items);
  if (n < 1 || n > INT32_MAX) {
    Py_DECREF(items);
    PyErr_SetString(PyExc_ValueError, "a slot needs at least one input");
    return -1;
  }
  self->inputs = PyMem_Calloc((size_t)n, sizeof(Descriptor));
  self->views = PyMem_Calloc((size_t)n, sizeof(Py_buffer));
  if (self->inputs == NULL || self->views == NULL) {
    Py_DECREF(items);
    PyErr_NoMemory();
    return -1;
  }
  self->num_inputs = (int32_t)n;
  for (Py_ssize_t k = 0; k < n; ++k) {
    if (describe_input(self, (int32_t)k, PySequence_Fast_GET_ITEM(items, k)) < 0) {
      Py_DECREF(items);
      return -1;
    }
  }
  Py_DECREF(items);
  if (PyObject_GetBuffer(out, &self->out, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
  if (self->out.itemsize != 4 || self->out.format == NULL || strcmp(self->out.format, "f") != 0) {
    PyErr_SetString(PyExc_ValueError, "out must be a writable float32 buffer");
    return -1;
  }
  self->out_data = self->out.buf;
  self->out_count = self->out.len / 4;
  Py_INCREF(ret);
  self->ret = ret;
  return 0;
}

static PyTypeObject SlotType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "aoti_minimal_ext.Slot",
    .tp_doc = PyDoc_STR("Slot(inputs, out, ret): one call's input descriptors and output place, made once"),
    .tp_basicsize = sizeof(Slot),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Slot_init,
    .tp_dealloc = (destructor)Slot_dealloc,
};

/* ---- Model: the dlopen'ed .so and one AOTInductorModel ---- */

typedef struct {
  PyObject_HEAD
  void* so;
  void* model;
  run_fn run;
  delete_fn delete_model;
  last_error_fn last_error;
  int32_t num_outputs;
  Descriptor* outputs; /* written by every call */
} Model;

static const char* last_error(const Model* self) {
  const char* message = NULL;
  if (self->last_error == NULL || self->last_error(&message) != 0 || message == NULL || *message == '\0')
    return "no message (AOTInductorGetLastError)";
  return message;
}

static void* symbol(void* so, const char* name, const char* what) {
  void* p = dlsym(so, name);
  if (p == NULL) PyErr_Format(PyExc_RuntimeError, "its model .so %s has no %s", what, name);
  return p;
}

static int Model_init(Model* self, PyObject* args, PyObject* kwargs) {
  static char* names[] = {"so_path", "name", NULL};
  const char *path, *what;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "ss", names, &path, &what)) return -1;
  if (!initialised) {
    PyErr_SetString(PyExc_RuntimeError, "call init(libtorch_path) before loading a model");
    return -1;
  }
  if (self->so != NULL) {
    PyErr_SetString(PyExc_RuntimeError, "a model is loaded once");
    return -1;
  }
  self->so = dlopen(path, RTLD_NOW | RTLD_LOCAL); /* never closed: its thread-local buffers outlive the model */
  if (self->so == NULL) {
    const char* why = dlerror();
    PyErr_Format(PyExc_RuntimeError, "cannot dlopen its model .so %s: %s", what, why ? why : "?");
    return -1;
  }
  create_fn create = (create_fn)symbol(self->so, "AOTInductorModelCreateV2", what);
  self->run = (run_fn)symbol(self->so, "AOTInductorModelRunMinimalArrayrefInterfaceV2", what);
  self->delete_model = (delete_fn)symbol(self->so, "AOTInductorModelDelete", what);
  num_outputs_fn num_outputs = (num_outputs_fn)symbol(self->so, "AOTInductorModelGetNumOutputs", what);
  self->last_error = (last_error_fn)symbol(self->so, "AOTInductorGetLastError", what);
  if (create == NULL || self->run == NULL || self->delete_model == NULL || num_outputs == NULL ||
      self->last_error == NULL)
    return -1;
  if (create(&self->model, NULL, 0) != 0) { /* no constants given: the weights embedded in the .so */
    self->model = NULL;
    PyErr_Format(PyExc_RuntimeError, "AOTInductorModelCreateV2 failed: %s", last_error(self));
    return -1;
  }
  size_t count = 0;
  if (num_outputs(self->model, &count) != 0 || count > INT32_MAX) {
    PyErr_Format(PyExc_RuntimeError, "AOTInductorModelGetNumOutputs failed: %s", last_error(self));
    return -1;
  }
  self->num_outputs = (int32_t)count;
  self->outputs = PyMem_Calloc(count ? count : 1, sizeof(Descriptor));
  if (self->outputs == NULL) {
    PyErr_NoMemory();
    return -1;
  }
  return 0;
}

static void Model_dealloc(Model* self) {
  if (self->model != NULL) self->delete_model(self->model);
  PyMem_Free(self->outputs);
  Py_TYPE(self)->tp_free((PyObject*)self);
}

static int contiguous(const Descriptor* d) {
  int64_t stride = 1;
  for (int32_t k = d->ndim; k-- > 0;) {
    if (d->sizes[k] != 1 && d->strides[k] != stride) return 0;
    stride *= d->sizes[k];
  }
  return 1;
}

/* One output in logical row-major order, converted to float32 (bool to 0 or 1). */
#define GATHER(T)                                                                    \
  do {                                                                               \
    const T* base = (const T*)d->data;                                               \
    for (int64_t i = 0; i < d->numel; ++i) {                                         \
      int64_t at = 0;                                                                \
      for (int32_t k = 0; k < d->ndim; ++k) at += index[k] * d->strides[k];          \
      out[i] = (float)base[at];                                                      \
      for (int32_t k = d->ndim; k-- > 0;) {                                          \
        if (++index[k] < d->sizes[k]) break;                                         \
        index[k] = 0;                                                                \
      }                                                                              \
    }                                                                                \
  } while (0)

/* Every output but one contiguous float32 one of the slot's size: each converted, concatenated. */
static int copy_any(const Model* self, float* out, int64_t count) {
  int64_t total = 0;
  for (int32_t j = 0; j < self->num_outputs; ++j) total += self->outputs[j].numel;
  if (total != count) {
    PyErr_Format(PyExc_ValueError,
                 "the model returned %d output(s) of %lld values together, but the slot's output place holds %lld: "
                 "the model file does not match the job's output_shape",
                 self->num_outputs, (long long)total, (long long)count);
    return -1;
  }
  for (int32_t j = 0; j < self->num_outputs; ++j) {
    const Descriptor* d = &self->outputs[j];
    int64_t index[MAX_DIMS] = {0};
    switch (dtype_index(d->dtype)) {
      case F32: GATHER(float); break;
      case F64: GATHER(double); break;
      case I64: GATHER(int64_t); break;
      case I32: GATHER(int32_t); break;
      case BOOL: GATHER(_Bool); break;
      default:
        PyErr_Format(PyExc_ValueError, "the model returned an output of dtype code %d, which this runner does not "
                     "convert to float32", (int)d->dtype);
        return -1;
    }
    out += d->numel;
  }
  return 0;
}

/* The call: the entry point on the slot's descriptors, the outputs into its place, its `ret` returned. */
static PyObject* Model_run(Model* self, PyObject* arg) {
  if (Py_TYPE(arg) != &SlotType) {
    PyErr_Format(PyExc_TypeError, "run takes a Slot, not %s", Py_TYPE(arg)->tp_name);
    return NULL;
  }
  Slot* slot = (Slot*)arg;
  if (self->run(self->model, slot->num_inputs, slot->inputs, self->num_outputs, self->outputs) != 0) {
    PyErr_Format(PyExc_RuntimeError, "AOTInductor: %s", last_error(self));
    return NULL;
  }
  const Descriptor* d = &self->outputs[0];
  if (self->num_outputs == 1 && d->dtype == dtype_codes[F32] && d->numel == slot->out_count && contiguous(d)) {
    memcpy(slot->out_data, d->data, (size_t)slot->out_count * sizeof(float));
  } else if (copy_any(self, slot->out_data, slot->out_count) < 0) {
    return NULL;
  }
  Py_INCREF(slot->ret);
  return slot->ret;
}

/* The last call's output descriptors (this thread's), as (dtype name, sizes) pairs. */
static PyObject* Model_outputs(Model* self, PyObject* unused) {
  (void)unused;
  PyObject* list = PyList_New(self->num_outputs);
  if (list == NULL) return NULL;
  for (int32_t j = 0; j < self->num_outputs; ++j) {
    const Descriptor* d = &self->outputs[j];
    const int k = dtype_index(d->dtype);
    PyObject* sizes = PyList_New(d->ndim);
    if (sizes == NULL) {
      Py_DECREF(list);
      return NULL;
    }
    for (int32_t i = 0; i < d->ndim; ++i) PyList_SET_ITEM(sizes, i, PyLong_FromLongLong(d->sizes[i]));
    PyObject* name = k >= 0 ? PyUnicode_FromString(DTYPE_NAMES[k]) : PyUnicode_FromFormat("dtype code %d", d->dtype);
    PyList_SET_ITEM(list, j, Py_BuildValue("(NN)", name, sizes));
  }
  return list;
}

static PyMethodDef Model_methods[] = {
    {"run", (PyCFunction)Model_run, METH_O, PyDoc_STR("run(slot) -> the slot's ret: one call")},
    {"outputs", (PyCFunction)Model_outputs, METH_NOARGS,
     PyDoc_STR("outputs() -> [(dtype, sizes)]: the last call's output descriptors")},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ModelType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "aoti_minimal_ext.Model",
    .tp_doc = PyDoc_STR("Model(so_path, name): the model .so dlopen'ed and one AOTInductorModel made"),
    .tp_basicsize = sizeof(Model),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Model_init,
    .tp_dealloc = (destructor)Model_dealloc,
    .tp_methods = Model_methods,
};

static PyMethodDef module_methods[] = {
    {"init", init, METH_O, PyDoc_STR("init(libtorch_path): read libtorch's dtype and device codes")},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "aoti_minimal_ext",
    .m_doc = PyDoc_STR("AOTInductor's minimal ArrayRef entry point from Python"),
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit_aoti_minimal_ext(void) {
  if (PyType_Ready(&SlotType) < 0 || PyType_Ready(&ModelType) < 0) return NULL;
  PyObject* m = PyModule_Create(&module);
  if (m == NULL) return NULL;
  Py_INCREF(&SlotType);
  Py_INCREF(&ModelType);
  if (PyModule_AddObject(m, "Slot", (PyObject*)&SlotType) < 0 ||
      PyModule_AddObject(m, "Model", (PyObject*)&ModelType) < 0) {
    Py_DECREF(m);
    return NULL;
  }
  return m;
}
