// libpytorch_jni.so: the natives of org.pytorch.NativePeer (pytorch_java_only), written
// against the pip wheel's libtorch. The interface is described in shared/JAVA_BRIDGE.md.
//
// Configuration, read once in JNI_OnLoad from the environment and reported back to Java as
// system properties (pytorch.jni.*):
//   PYTORCH_JNI_NUM_THREADS          at::set_num_threads (unset: libtorch's default)
//   PYTORCH_JNI_NUM_INTEROP_THREADS  at::set_num_interop_threads (unset: libtorch's default)
//   PYTORCH_JNI_GRAD_MODE            inference (default, like the official bridge) | no_grad | default
//   PYTORCH_JNI_GRAPH_OPTIMIZER      0 (default: disabled, like the official bridge) | 1
#include <dlfcn.h>
#include <jni.h>

#include <charconv>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>
#include <c10/core/InferenceMode.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/script.h>
#include <torch/version.h>

#include "bridge_config.h"
#include "jni_util.h"
#include "native_object.h"

namespace pytorch_jni_bridge {
namespace {

static_assert(sizeof(jlong) == sizeof(int64_t) && sizeof(jdouble) == sizeof(double));

// ---- codes shared with the Java classes ------------------------------------------------

enum DTypeCode : jint { kUInt8 = 1, kInt8 = 2, kInt32 = 3, kFloat32 = 4, kInt64 = 5, kFloat64 = 6 };
enum MemoryFormatCode : jint { kContiguous = 1, kChannelsLast = 2, kChannelsLast3d = 3 };
constexpr jint kDeviceCpu = 1;
enum TypeCode : jint {
  kNull = 1,
  kTensor = 2,
  kBool = 3,
  kLong = 4,
  kDouble = 5,
  kString = 6,
  kTuple = 7,
  kBoolList = 8,
  kLongList = 9,
  kDoubleList = 10,
  kTensorList = 11,
  kList = 12,
  kDictStringKey = 13,
  kDictLongKey = 14,
};

// ---- configuration ---------------------------------------------------------------------

struct Config {
  GradMode grad_mode = GradMode::kInference;
  bool graph_optimizer = false;
};
Config g_config;

const char* grad_mode_name(GradMode mode) {
  switch (mode) {
    case GradMode::kInference:
      return "inference";
    case GradMode::kNoGrad:
      return "no_grad";
    case GradMode::kDefault:
      return "default";
  }
  return "?";
}

// Every load and call into TorchScript runs under this guard: the configured grad mode and
// graph optimizer switch (the official bridge's JITCallGuard is InferenceMode + optimizer off).
class CallGuard {
 public:
  CallGuard() : optimizer_(g_config.graph_optimizer) {
    if (g_config.grad_mode == GradMode::kInference) {
      inference_.emplace();
    } else if (g_config.grad_mode == GradMode::kNoGrad) {
      no_grad_.emplace();
    }
  }
  CallGuard(const CallGuard&) = delete;
  CallGuard& operator=(const CallGuard&) = delete;

 private:
  torch::jit::GraphOptimizerEnabledGuard optimizer_;
  std::optional<c10::InferenceMode> inference_;
  std::optional<at::NoGradGuard> no_grad_;
};

// ---- cached classes (global refs) and member ids ----------------------------------------

struct JavaRefs {
  jclass ivalue, tensor, native_peer, hybrid_data, hybrid_destructor_class, byte_buffer, hash_map, map, map_entry, collection, long_class;
  jclass illegal_argument, null_pointer, illegal_state, cpp_exception, unknown_cpp_exception;
  jobject native_order;  // ByteOrder.nativeOrder(), a global ref

  jfieldID ivalue_type_code, tensor_shape;

  // Direct field reads for the per-call input path, instead of calling IValue.toTensor,
  // Tensor.dtypeJniCode, memoryFormatJniCode and getRawDataBuffer (each a JNI call into Java).
  // Field reads run no Java code. Used only when every field was found (fields_ok), and only
  // for the six concrete Tensor classes of the jar; anything else takes the getters.
  struct TensorClass {
    jclass cls;     // org.pytorch.Tensor$Tensor_<dtype>, a global ref
    jfieldID data;  // its `data` buffer field
    jint dtype;     // what its dtypeJniCode() returns
    // Outputs: the class's constructor (typed buffer, shape, memory format) and the typed buffer's static
    // wrap(<type>[]), which makes a heap buffer over a Java array (see tensor_to_java).
    jmethodID init;
    jclass buffer;  // java.nio.<Type>Buffer, a global ref
    jmethodID wrap;
  };
  bool fields_ok;
  jfieldID ivalue_data, tensor_memory_format, memory_format_jni_code;
  TensorClass tensor_classes[6];
  jobject memory_formats[4];  // MemoryFormat.CONTIGUOUS, CHANNELS_LAST, CHANNELS_LAST_3D by jni code, global refs
  // java.nio.Buffer's public accessors, for a tensor over a heap buffer (an output passed back in)
  jmethodID buffer_has_array, buffer_array, buffer_array_offset, buffer_capacity;

  jmethodID to_tensor, to_bool, to_long, to_double, to_str, to_tuple, to_list, to_bool_list,
      to_long_list, to_double_list, to_tensor_list, to_dict_string_key, to_dict_long_key;
  jmethodID optional_null, from_tensor, from_bool, from_long, from_double, from_string,
      list_from_bool, list_from_long, list_from_double, list_from_tensor, list_from_ivalue,
      tuple_from, dict_string_key_from, dict_long_key_from;
  jmethodID dtype_code, memory_format_code, raw_data_buffer, new_tensor;
  jmethodID allocate_direct, buffer_order;
  jmethodID hash_map_init, map_put, map_size, map_key_set, map_entry_set, collection_to_array,
      entry_key, entry_value;
  jmethodID long_value, long_value_of;
};
JavaRefs J{};

// A global ref to class `name` (binary name) from IValue's class loader, not initialised.
jclass uninitialised_class(JNIEnv* env, const char* name) {
  Local<jclass> class_class(env, env->FindClass("java/lang/Class"));
  check(env);
  const jmethodID for_name = static_method_id(env, class_class.get(), "forName",
                                              "(Ljava/lang/String;ZLjava/lang/ClassLoader;)Ljava/lang/Class;");
  const jmethodID get_loader = method_id(env, class_class.get(), "getClassLoader", "()Ljava/lang/ClassLoader;");
  Local<jobject> loader(env, env->CallObjectMethod(J.ivalue, get_loader));
  check(env);
  Local<jstring> jname(env, to_jstring(env, name));
  Local<jobject> cls(env, env->CallStaticObjectMethod(class_class.get(), for_name, jname.get(), JNI_FALSE, loader.get()));
  check(env);
  auto global = static_cast<jclass>(env->NewGlobalRef(cls.get()));
  check(env);
  return global;
}

// The fields behind the getters (see JavaRefs::fields_ok). A missing one (another jar version)
// is not an error: the getters are used instead.
void cache_fields(JNIEnv* env) {
  auto optional_field = [env](jclass cls, const char* name, const char* signature) -> jfieldID {
    jfieldID id = cls == nullptr ? nullptr : env->GetFieldID(cls, name, signature);
    if (env->ExceptionCheck()) {
      env->ExceptionClear();
      return nullptr;
    }
    return id;
  };
  auto optional_class = [env](const char* name) -> jclass {
    Local<jclass> local(env, env->FindClass(name));
    if (env->ExceptionCheck()) {
      env->ExceptionClear();
      return nullptr;
    }
    return static_cast<jclass>(env->NewGlobalRef(local.get()));
  };
  bool ok = true;
  J.ivalue_data = optional_field(J.ivalue, "mData", "Ljava/lang/Object;");
  J.tensor_memory_format = optional_field(J.tensor, "memoryFormat", "Lorg/pytorch/MemoryFormat;");
  {
    Local<jclass> memory_format(env, env->FindClass("org/pytorch/MemoryFormat"));
    if (env->ExceptionCheck()) {
      env->ExceptionClear();
    }
    J.memory_format_jni_code = optional_field(memory_format.get(), "jniCode", "I");
  }
  ok = J.ivalue_data && J.tensor_memory_format && J.memory_format_jni_code;
  const struct {
    const char* cls;
    const char* buffer;  // the buffer class's binary name
    const char* array;   // the signature of its wrap(<type>[])
    jint dtype;
  } classes[] = {
      // most frequent first: the lookup tries them in order
      {"org/pytorch/Tensor$Tensor_float32", "java/nio/FloatBuffer", "([F)Ljava/nio/FloatBuffer;", kFloat32},
      {"org/pytorch/Tensor$Tensor_int64", "java/nio/LongBuffer", "([J)Ljava/nio/LongBuffer;", kInt64},
      {"org/pytorch/Tensor$Tensor_int32", "java/nio/IntBuffer", "([I)Ljava/nio/IntBuffer;", kInt32},
      {"org/pytorch/Tensor$Tensor_float64", "java/nio/DoubleBuffer", "([D)Ljava/nio/DoubleBuffer;", kFloat64},
      {"org/pytorch/Tensor$Tensor_uint8", "java/nio/ByteBuffer", "([B)Ljava/nio/ByteBuffer;", kUInt8},
      {"org/pytorch/Tensor$Tensor_int8", "java/nio/ByteBuffer", "([B)Ljava/nio/ByteBuffer;", kInt8},
  };
  static_assert(std::size(classes) == std::size(JavaRefs{}.tensor_classes));
  auto optional_method = [env](jclass cls, const char* name, const char* signature, bool is_static) -> jmethodID {
    if (cls == nullptr) {
      return nullptr;
    }
    jmethodID id = is_static ? env->GetStaticMethodID(cls, name, signature) : env->GetMethodID(cls, name, signature);
    if (env->ExceptionCheck()) {
      env->ExceptionClear();
      return nullptr;
    }
    return id;
  };
  for (size_t i = 0; i < std::size(classes); ++i) {
    JavaRefs::TensorClass& c = J.tensor_classes[i];
    c.cls = optional_class(classes[i].cls);
    const std::string buffer_signature = std::string("L") + classes[i].buffer + ";";
    c.data = optional_field(c.cls, "data", buffer_signature.c_str());
    c.dtype = classes[i].dtype;
    const std::string init_signature = "(" + buffer_signature + "[JLorg/pytorch/MemoryFormat;)V";
    c.init = optional_method(c.cls, "<init>", init_signature.c_str(), false);
    c.buffer = optional_class(classes[i].buffer);
    c.wrap = optional_method(c.buffer, "wrap", classes[i].array, true);
    ok = ok && c.cls != nullptr && c.data != nullptr && c.init != nullptr && c.wrap != nullptr;
  }
  {
    Local<jclass> memory_format(env, env->FindClass("org/pytorch/MemoryFormat"));
    if (env->ExceptionCheck()) {
      env->ExceptionClear();
    }
    const std::pair<jint, const char*> formats[] = {
        {kContiguous, "CONTIGUOUS"}, {kChannelsLast, "CHANNELS_LAST"}, {kChannelsLast3d, "CHANNELS_LAST_3D"}};
    for (const auto& [code, name] : formats) {
      jfieldID id = memory_format ? env->GetStaticFieldID(memory_format.get(), name, "Lorg/pytorch/MemoryFormat;")
                                  : nullptr;
      if (env->ExceptionCheck()) {
        env->ExceptionClear();
        id = nullptr;
      }
      Local<jobject> value(env, id != nullptr ? env->GetStaticObjectField(memory_format.get(), id) : nullptr);
      J.memory_formats[code] = value ? env->NewGlobalRef(value.get()) : nullptr;
      ok = ok && J.memory_formats[code] != nullptr;
    }
  }
  J.fields_ok = ok;
}

void cache_java(JNIEnv* env) {
  J.ivalue = global_class(env, "org/pytorch/IValue");
  J.tensor = global_class(env, "org/pytorch/Tensor");
  // NativePeer's and HybridData's static initialisers call NativeLoader, which is ready only
  // once Module.load has run, while this library may be loaded earlier (System.loadLibrary):
  // take them through Class.forName(name, false, loader), which does not initialise
  // (HotSpot's FindClass does), and look their members up on first use (see peer_ids).
  J.native_peer = uninitialised_class(env, "org.pytorch.NativePeer");
  J.hybrid_data = uninitialised_class(env, "com.facebook.jni.HybridData");
  J.hybrid_destructor_class = uninitialised_class(env, "com.facebook.jni.HybridData$Destructor");
  J.byte_buffer = global_class(env, "java/nio/ByteBuffer");
  // a dict keeps its insertion order (c10::Dict is ordered): pytree order for the runners' flattening
  J.hash_map = global_class(env, "java/util/LinkedHashMap");
  J.map = global_class(env, "java/util/Map");
  J.map_entry = global_class(env, "java/util/Map$Entry");
  J.collection = global_class(env, "java/util/Collection");
  J.long_class = global_class(env, "java/lang/Long");
  J.illegal_argument = global_class(env, "java/lang/IllegalArgumentException");
  J.null_pointer = global_class(env, "java/lang/NullPointerException");
  J.illegal_state = global_class(env, "java/lang/IllegalStateException");
  J.cpp_exception = global_class(env, "com/facebook/jni/CppException");
  J.unknown_cpp_exception = global_class(env, "com/facebook/jni/UnknownCppException");

  Local<jclass> byte_order(env, env->FindClass("java/nio/ByteOrder"));
  check(env);
  Local<jobject> order(env, env->CallStaticObjectMethod(
                                byte_order.get(),
                                static_method_id(env, byte_order.get(), "nativeOrder", "()Ljava/nio/ByteOrder;")));
  check(env);
  J.native_order = env->NewGlobalRef(order.get());
  check(env);

  J.ivalue_type_code = field_id(env, J.ivalue, "mTypeCode", "I");
  cache_fields(env);
  J.tensor_shape = field_id(env, J.tensor, "shape", "[J");

  const jclass iv = J.ivalue;
  J.to_tensor = method_id(env, iv, "toTensor", "()Lorg/pytorch/Tensor;");
  J.to_bool = method_id(env, iv, "toBool", "()Z");
  J.to_long = method_id(env, iv, "toLong", "()J");
  J.to_double = method_id(env, iv, "toDouble", "()D");
  J.to_str = method_id(env, iv, "toStr", "()Ljava/lang/String;");
  J.to_tuple = method_id(env, iv, "toTuple", "()[Lorg/pytorch/IValue;");
  J.to_list = method_id(env, iv, "toList", "()[Lorg/pytorch/IValue;");
  J.to_bool_list = method_id(env, iv, "toBoolList", "()[Z");
  J.to_long_list = method_id(env, iv, "toLongList", "()[J");
  J.to_double_list = method_id(env, iv, "toDoubleList", "()[D");
  J.to_tensor_list = method_id(env, iv, "toTensorList", "()[Lorg/pytorch/Tensor;");
  J.to_dict_string_key = method_id(env, iv, "toDictStringKey", "()Ljava/util/Map;");
  J.to_dict_long_key = method_id(env, iv, "toDictLongKey", "()Ljava/util/Map;");

  J.optional_null = static_method_id(env, iv, "optionalNull", "()Lorg/pytorch/IValue;");
  J.from_tensor = static_method_id(env, iv, "from", "(Lorg/pytorch/Tensor;)Lorg/pytorch/IValue;");
  J.from_bool = static_method_id(env, iv, "from", "(Z)Lorg/pytorch/IValue;");
  J.from_long = static_method_id(env, iv, "from", "(J)Lorg/pytorch/IValue;");
  J.from_double = static_method_id(env, iv, "from", "(D)Lorg/pytorch/IValue;");
  J.from_string = static_method_id(env, iv, "from", "(Ljava/lang/String;)Lorg/pytorch/IValue;");
  J.list_from_bool = static_method_id(env, iv, "listFrom", "([Z)Lorg/pytorch/IValue;");
  J.list_from_long = static_method_id(env, iv, "listFrom", "([J)Lorg/pytorch/IValue;");
  J.list_from_double = static_method_id(env, iv, "listFrom", "([D)Lorg/pytorch/IValue;");
  J.list_from_tensor = static_method_id(env, iv, "listFrom", "([Lorg/pytorch/Tensor;)Lorg/pytorch/IValue;");
  J.list_from_ivalue = static_method_id(env, iv, "listFrom", "([Lorg/pytorch/IValue;)Lorg/pytorch/IValue;");
  J.tuple_from = static_method_id(env, iv, "tupleFrom", "([Lorg/pytorch/IValue;)Lorg/pytorch/IValue;");
  J.dict_string_key_from = static_method_id(env, iv, "dictStringKeyFrom", "(Ljava/util/Map;)Lorg/pytorch/IValue;");
  J.dict_long_key_from = static_method_id(env, iv, "dictLongKeyFrom", "(Ljava/util/Map;)Lorg/pytorch/IValue;");

  J.dtype_code = method_id(env, J.tensor, "dtypeJniCode", "()I");
  J.memory_format_code = method_id(env, J.tensor, "memoryFormatJniCode", "()I");
  J.raw_data_buffer = method_id(env, J.tensor, "getRawDataBuffer", "()Ljava/nio/Buffer;");
  J.new_tensor = static_method_id(env, J.tensor, "nativeNewTensor",
                                  "(Ljava/nio/ByteBuffer;[JIILcom/facebook/jni/HybridData;)Lorg/pytorch/Tensor;");

  {
    Local<jclass> buffer(env, env->FindClass("java/nio/Buffer"));
    check(env);
    J.buffer_has_array = method_id(env, buffer.get(), "hasArray", "()Z");
    J.buffer_array = method_id(env, buffer.get(), "array", "()Ljava/lang/Object;");
    J.buffer_array_offset = method_id(env, buffer.get(), "arrayOffset", "()I");
    J.buffer_capacity = method_id(env, buffer.get(), "capacity", "()I");
  }
  J.allocate_direct = static_method_id(env, J.byte_buffer, "allocateDirect", "(I)Ljava/nio/ByteBuffer;");
  J.buffer_order = method_id(env, J.byte_buffer, "order", "(Ljava/nio/ByteOrder;)Ljava/nio/ByteBuffer;");
  J.hash_map_init = method_id(env, J.hash_map, "<init>", "(I)V");
  J.map_put = method_id(env, J.map, "put", "(Ljava/lang/Object;Ljava/lang/Object;)Ljava/lang/Object;");
  J.map_size = method_id(env, J.map, "size", "()I");
  J.map_key_set = method_id(env, J.map, "keySet", "()Ljava/util/Set;");
  J.map_entry_set = method_id(env, J.map, "entrySet", "()Ljava/util/Set;");
  J.collection_to_array = method_id(env, J.collection, "toArray", "()[Ljava/lang/Object;");
  J.entry_key = method_id(env, J.map_entry, "getKey", "()Ljava/lang/Object;");
  J.entry_value = method_id(env, J.map_entry, "getValue", "()Ljava/lang/Object;");
  J.long_value = method_id(env, J.long_class, "longValue", "()J");
  J.long_value_of = static_method_id(env, J.long_class, "valueOf", "(J)Ljava/lang/Long;");
}

// Member ids of NativePeer and HybridData, looked up on first use: Get*ID initialises the
// class, and their static initialisers (which load pytorch_jni and fbjni through NativeLoader)
// may only run once NativeLoader is set up, i.e. not when System.loadLibrary("pytorch_jni")
// is called before Module.load. A failed lookup throws and is retried on the next call.
struct PeerIds {
  jfieldID peer_hybrid_data, hybrid_destructor, destructor_pointer;
  jmethodID hybrid_init;
};

const PeerIds& peer_ids(JNIEnv* env) {
  static const PeerIds ids = [env] {
    PeerIds p{};
    p.peer_hybrid_data = field_id(env, J.native_peer, "mHybridData", "Lcom/facebook/jni/HybridData;");
    // Initialises HybridData, whose static initialiser loads libfbjni.so.
    p.hybrid_init = method_id(env, J.hybrid_data, "<init>", "()V");
    p.hybrid_destructor = field_id(env, J.hybrid_data, "mDestructor", "Lcom/facebook/jni/HybridData$Destructor;");
    p.destructor_pointer = field_id(env, J.hybrid_destructor_class, "mNativePointer", "J");
    return p;
  }();
  return ids;
}

// ---- small call helpers that check for a pending exception ------------------------------

template <class... A>
jobject call_object(JNIEnv* env, jobject obj, jmethodID m, A... args) {
  jobject r = env->CallObjectMethod(obj, m, args...);
  check(env);
  return r;
}

template <class... A>
jobject call_static(JNIEnv* env, jclass cls, jmethodID m, A... args) {
  jobject r = env->CallStaticObjectMethod(cls, m, args...);
  check(env);
  return r;
}

[[noreturn]] void illegal_argument(std::string message) {
  throw JavaError{J.illegal_argument, std::move(message)};
}

[[noreturn]] void null_pointer(std::string message) { throw JavaError{J.null_pointer, std::move(message)}; }

// Calls `body`; turns every C++ exception into a Java exception (never unwinds into the JVM).
template <class F>
auto guarded(JNIEnv* env, F&& body) noexcept -> decltype(body()) {
  using R = decltype(body());
  try {
    return body();
  } catch (const JavaPending&) {
    // the Java exception is already pending
  } catch (const JavaError& e) {
    raise_java(env, e.cls, e.message);
  } catch (const c10::Error& e) {
    raise_java(env, J.cpp_exception, e.what_without_backtrace());
  } catch (const std::exception& e) {
    raise_java(env, J.cpp_exception, e.what());
  } catch (...) {
    raise_java(env, J.unknown_cpp_exception, "unknown C++ exception in pytorch_jni");
  }
  return R();
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    s += (i ? ", " : "") + std::to_string(shape[i]);
  }
  return s + "]";
}

// ---- tensors ---------------------------------------------------------------------------

at::ScalarType scalar_type_of(jint code) {
  switch (code) {
    case kUInt8:
      return at::kByte;
    case kInt8:
      return at::kChar;
    case kInt32:
      return at::kInt;
    case kFloat32:
      return at::kFloat;
    case kInt64:
      return at::kLong;
    case kFloat64:
      return at::kDouble;
    default:
      illegal_argument("unknown Tensor dtype code " + std::to_string(code));
  }
}

jint dtype_code_of(at::ScalarType type) {
  switch (type) {
    case at::kByte:
      return kUInt8;
    case at::kChar:
      return kInt8;
    case at::kInt:
      return kInt32;
    case at::kFloat:
      return kFloat32;
    case at::kLong:
      return kInt64;
    case at::kDouble:
      return kFloat64;
    default:
      illegal_argument(std::string("output tensor dtype ") + c10::toString(type) +
                       " has no org.pytorch.DType (uint8, int8, int32, float32, int64, float64)");
  }
}

// org.pytorch.Tensor -> at::Tensor over the Java buffer's memory (no copy). The Java tensor,
// reachable from the caller's arguments, keeps that memory alive for the call.
at::Tensor tensor_from_java(JNIEnv* env, jobject jtensor) {
  if (jtensor == nullptr) {
    null_pointer("Tensor is null");
  }
  const JavaRefs::TensorClass* known = nullptr;
  if (J.fields_ok) {
    for (const auto& c : J.tensor_classes) {
      if (env->IsInstanceOf(jtensor, c.cls)) {
        known = &c;
        break;
      }
    }
  }
  jint dtype = 0;
  jint format = 0;
  if (known != nullptr) {
    // What dtypeJniCode(), memoryFormatJniCode() and getRawDataBuffer() return, read directly
    // (no Java code runs, so no exception can be pending).
    dtype = known->dtype;
    Local<jobject> memory_format(env, env->GetObjectField(jtensor, J.tensor_memory_format));
    if (!memory_format) {
      null_pointer("Tensor memory format is null");
    }
    format = env->GetIntField(memory_format.get(), J.memory_format_jni_code);
  } else {
    dtype = env->CallIntMethod(jtensor, J.dtype_code);
    check(env);
    format = env->CallIntMethod(jtensor, J.memory_format_code);
    check(env);
  }
  const at::ScalarType type = scalar_type_of(dtype);

  Local<jlongArray> jshape(env, static_cast<jlongArray>(env->GetObjectField(jtensor, J.tensor_shape)));
  if (!jshape) {
    null_pointer("Tensor shape is null");
  }
  const jsize rank = env->GetArrayLength(jshape.get());
  std::vector<int64_t> shape(static_cast<size_t>(rank));
  env->GetLongArrayRegion(jshape.get(), 0, rank, reinterpret_cast<jlong*>(shape.data()));
  check(env);
  int64_t numel = 1;
  for (int64_t d : shape) {
    if (d < 0 || __builtin_mul_overflow(numel, d, &numel)) {
      illegal_argument("invalid Tensor shape " + shape_text(shape));
    }
  }

  Local<jobject> buffer(env, known != nullptr ? env->GetObjectField(jtensor, known->data)
                                                  : call_object(env, jtensor, J.raw_data_buffer));
  if (!buffer) {
    null_pointer("Tensor data buffer is null");
  }
  std::vector<int64_t> strides;  // empty: contiguous
  switch (format) {
    case kContiguous:
      break;
    case kChannelsLast:
      if (rank != 4) {
        illegal_argument("CHANNELS_LAST needs a 4-d shape, got " + shape_text(shape));
      }
      strides = c10::get_channels_last_strides_2d(shape);
      break;
    case kChannelsLast3d:
      if (rank != 5) {
        illegal_argument("CHANNELS_LAST_3D needs a 5-d shape, got " + shape_text(shape));
      }
      strides = c10::get_channels_last_strides_3d(shape);
      break;
    default:
      illegal_argument("unknown Tensor memory format code " + std::to_string(format));
  }
  const auto options = at::TensorOptions().dtype(type).device(at::kCPU);
  const jlong capacity = env->GetDirectBufferCapacity(buffer.get());
  void* data = env->GetDirectBufferAddress(buffer.get());
  if (capacity >= 0) {  // a direct buffer (Tensor.fromBlob, Tensor.allocate*Buffer): read in place
    if (data == nullptr && capacity > 0) {
      illegal_argument("Tensor data buffer has no address");
    }
    if (capacity != numel) {
      illegal_argument("Tensor shape " + shape_text(shape) + " has " + std::to_string(numel) +
                       " elements but its data buffer holds " + std::to_string(capacity));
    }
    if (numel == 0) {
      return at::empty(shape, options);
    }
    return strides.empty() ? torch::from_blob(data, shape, options) : torch::from_blob(data, shape, strides, options);
  }
  // A heap buffer over a Java array: a tensor the bridge returned (tensor_to_java), passed back in. The array
  // may move (GC), so its elements are copied into a tensor of the bridge's own.
  const jboolean has_array = env->CallBooleanMethod(buffer.get(), J.buffer_has_array);
  check(env);
  if (!has_array) {
    illegal_argument(
        "Tensor data buffer is neither direct nor backed by an array: use Tensor.fromBlob or a buffer from "
        "Tensor.allocate*Buffer");
  }
  const jint heap_capacity = env->CallIntMethod(buffer.get(), J.buffer_capacity);
  check(env);
  if (heap_capacity != numel) {
    illegal_argument("Tensor shape " + shape_text(shape) + " has " + std::to_string(numel) +
                     " elements but its data buffer holds " + std::to_string(heap_capacity));
  }
  const jint offset = env->CallIntMethod(buffer.get(), J.buffer_array_offset);
  check(env);
  Local<jarray> array(env, static_cast<jarray>(call_object(env, buffer.get(), J.buffer_array)));
  at::Tensor copy = strides.empty() ? at::empty(shape, options) : at::empty_strided(shape, strides, options);
  if (numel > 0) {
    void* elements = env->GetPrimitiveArrayCritical(array.get(), nullptr);
    if (elements == nullptr) {
      throw JavaPending{};  // OutOfMemoryError is pending
    }
    const size_t size = copy.element_size();
    std::memcpy(copy.data_ptr(), static_cast<const char*>(elements) + static_cast<size_t>(offset) * size,
                static_cast<size_t>(numel) * size);
    env->ReleasePrimitiveArrayCritical(array.get(), elements, JNI_ABORT);
  }
  return copy;
}

// A new Java array of `count` elements of the dtype's Java type, holding a copy of `data`.
jarray java_array_of(JNIEnv* env, jint dtype, jsize count, const void* data) {
  jarray array = nullptr;
  switch (dtype) {
    case kFloat32:
      array = env->NewFloatArray(count);
      if (array != nullptr) env->SetFloatArrayRegion(static_cast<jfloatArray>(array), 0, count, static_cast<const jfloat*>(data));
      break;
    case kFloat64:
      array = env->NewDoubleArray(count);
      if (array != nullptr) env->SetDoubleArrayRegion(static_cast<jdoubleArray>(array), 0, count, static_cast<const jdouble*>(data));
      break;
    case kInt64:
      array = env->NewLongArray(count);
      if (array != nullptr) env->SetLongArrayRegion(static_cast<jlongArray>(array), 0, count, static_cast<const jlong*>(data));
      break;
    case kInt32:
      array = env->NewIntArray(count);
      if (array != nullptr) env->SetIntArrayRegion(static_cast<jintArray>(array), 0, count, static_cast<const jint*>(data));
      break;
    default:  // kUInt8, kInt8
      array = env->NewByteArray(count);
      if (array != nullptr) env->SetByteArrayRegion(static_cast<jbyteArray>(array), 0, count, static_cast<const jbyte*>(data));
      break;
  }
  check(env);
  return array;
}

// at::Tensor -> new org.pytorch.Tensor owning a copy of its elements. A bool tensor, which org.pytorch.DType
// cannot hold, comes back as UINT8 0/1 (the runners' outputs are bool as 0 or 1).
//
// The copy goes into a Java array wrapped by a heap buffer (<Type>Buffer.wrap), not into a new direct
// ByteBuffer as the official bridge's (ByteBuffer.allocateDirect): a direct buffer costs 0.7-0.9 µs to make
// (native memory, a Cleaner) on every call, a Java array a few nanoseconds. Users read an output with
// getDataAs*Array, which works on either; an output passed back in as an input is copied (tensor_from_java).
// Without the jar's fields and constructors (fields_ok false), the official way is taken.
jobject tensor_to_java(JNIEnv* env, const at::Tensor& output) {
  at::Tensor t = output.device().is_cpu() ? output : output.cpu();
  if (t.scalar_type() == at::kBool) {
    t = t.to(at::kByte);
  }
  const jint dtype = dtype_code_of(t.scalar_type());
  jint format = kContiguous;
  if (t.is_contiguous()) {
    format = kContiguous;
  } else if (t.dim() == 4 && t.is_contiguous(at::MemoryFormat::ChannelsLast)) {
    format = kChannelsLast;
  } else if (t.dim() == 5 && t.is_contiguous(at::MemoryFormat::ChannelsLast3d)) {
    format = kChannelsLast3d;
  } else {
    t = t.contiguous();
  }
  const size_t nbytes = static_cast<size_t>(t.numel()) * t.element_size();
  if (nbytes > static_cast<size_t>(INT_MAX)) {
    illegal_argument("output tensor of " + std::to_string(nbytes) + " bytes exceeds a Java ByteBuffer");
  }
  const auto sizes = t.sizes();
  Local<jlongArray> jshape(env, env->NewLongArray(static_cast<jsize>(sizes.size())));
  check(env);
  env->SetLongArrayRegion(jshape.get(), 0, static_cast<jsize>(sizes.size()),
                          reinterpret_cast<const jlong*>(sizes.data()));
  check(env);
  if (J.fields_ok) {
    const JavaRefs::TensorClass* c = nullptr;
    for (const auto& k : J.tensor_classes) {
      if (k.dtype == dtype) {
        c = &k;
        break;
      }
    }
    if (c != nullptr) {
      Local<jarray> array(env, java_array_of(env, dtype, static_cast<jsize>(t.numel()), t.data_ptr()));
      Local<jobject> buffer(env, call_static(env, c->buffer, c->wrap, array.get()));
      jobject made = env->NewObject(c->cls, c->init, buffer.get(), jshape.get(), J.memory_formats[format]);
      check(env);
      return made;
    }
  }
  Local<jobject> buffer(env, call_static(env, J.byte_buffer, J.allocate_direct, static_cast<jint>(nbytes)));
  // JNI-made and Java-allocated ByteBuffers start big-endian; the data is native-endian.
  Local<jobject> same_buffer(env, call_object(env, buffer.get(), J.buffer_order, J.native_order));
  if (nbytes > 0) {
    void* dst = env->GetDirectBufferAddress(buffer.get());
    if (dst == nullptr) {
      throw JavaError{J.illegal_state, "could not get the address of a new direct ByteBuffer"};
    }
    std::memcpy(dst, t.data_ptr(), nbytes);
  }
  return call_static(env, J.tensor, J.new_tensor, buffer.get(), jshape.get(), dtype, format,
                     static_cast<jobject>(nullptr));
}

// ---- IValues: Java -> C++ ------------------------------------------------------------------

at::IValue ivalue_from_java(JNIEnv* env, jobject jvalue);

std::vector<at::IValue> ivalues_from_array(JNIEnv* env, jobjectArray array) {
  if (array == nullptr) {
    null_pointer("IValue array is null");
  }
  const jsize n = env->GetArrayLength(array);
  std::vector<at::IValue> values;
  values.reserve(static_cast<size_t>(n));
  for (jsize i = 0; i < n; ++i) {
    Local<jobject> element(env, env->GetObjectArrayElement(array, i));
    check(env);
    values.push_back(ivalue_from_java(env, element.get()));
  }
  return values;
}

// The element type of a generic list / dict value: the unified type of its items.
c10::TypePtr common_type(const std::vector<at::IValue>& values) {
  c10::TypePtr type;
  for (const auto& v : values) {
    c10::TypePtr t = c10::unshapedType(v.type());
    if (!type) {
      type = t;
    } else if (auto unified = c10::unifyTypes(type, t)) {
      type = *unified;
    } else {
      return c10::AnyType::get();
    }
  }
  return type ? type : c10::AnyType::get();
}

template <class T, class JArray, class JElem>
c10::List<T> list_from_primitive_array(JNIEnv* env, JArray array,
                                       void (JNIEnv::*get_region)(JArray, jsize, jsize, JElem*)) {
  if (array == nullptr) {
    null_pointer("list is null");
  }
  const jsize n = env->GetArrayLength(array);
  std::vector<JElem> items(static_cast<size_t>(n));
  (env->*get_region)(array, 0, n, items.data());
  check(env);
  c10::List<T> list;
  list.reserve(items.size());
  for (JElem item : items) {
    if constexpr (std::is_same_v<T, bool>) {
      list.push_back(item != JNI_FALSE);
    } else {
      list.push_back(static_cast<T>(item));
    }
  }
  return list;
}

// Map<K, IValue> -> (key, value) pairs, keys converted by `key_of`.
template <class K, class KeyOf>
std::vector<std::pair<K, at::IValue>> map_entries(JNIEnv* env, jobject map, KeyOf key_of) {
  if (map == nullptr) {
    null_pointer("dict is null");
  }
  Local<jobject> entry_set(env, call_object(env, map, J.map_entry_set));
  Local<jobjectArray> entries(env, static_cast<jobjectArray>(call_object(env, entry_set.get(), J.collection_to_array)));
  const jsize n = env->GetArrayLength(entries.get());
  std::vector<std::pair<K, at::IValue>> out;
  out.reserve(static_cast<size_t>(n));
  for (jsize i = 0; i < n; ++i) {
    Local<jobject> entry(env, env->GetObjectArrayElement(entries.get(), i));
    check(env);
    Local<jobject> key(env, call_object(env, entry.get(), J.entry_key));
    if (!key) {
      null_pointer("dict key is null");
    }
    Local<jobject> value(env, call_object(env, entry.get(), J.entry_value));
    K k = key_of(key.get());
    out.emplace_back(std::move(k), ivalue_from_java(env, value.get()));
  }
  return out;
}

template <class K>
c10::impl::GenericDict dict_from_entries(std::vector<std::pair<K, at::IValue>> entries, c10::TypePtr key_type) {
  std::vector<at::IValue> values;
  values.reserve(entries.size());
  for (const auto& e : entries) {
    values.push_back(e.second);
  }
  c10::impl::GenericDict dict(std::move(key_type), common_type(values));
  dict.reserve(entries.size());
  for (auto& e : entries) {
    dict.insert_or_assign(at::IValue(std::move(e.first)), std::move(e.second));
  }
  return dict;
}

at::IValue ivalue_from_java(JNIEnv* env, jobject jvalue) {
  if (jvalue == nullptr) {
    null_pointer("IValue is null (use IValue.optionalNull() for None)");
  }
  const jint code = env->GetIntField(jvalue, J.ivalue_type_code);
  switch (code) {
    case kNull:
      return {};
    case kTensor: {
      // toTensor() returns mData once it has checked the type code, as done here.
      Local<jobject> t(env, J.fields_ok ? env->GetObjectField(jvalue, J.ivalue_data) : call_object(env, jvalue, J.to_tensor));
      return tensor_from_java(env, t.get());
    }
    case kBool: {
      const jboolean b = env->CallBooleanMethod(jvalue, J.to_bool);
      check(env);
      return b != JNI_FALSE;
    }
    case kLong: {
      const jlong v = env->CallLongMethod(jvalue, J.to_long);
      check(env);
      return static_cast<int64_t>(v);
    }
    case kDouble: {
      const jdouble v = env->CallDoubleMethod(jvalue, J.to_double);
      check(env);
      return static_cast<double>(v);
    }
    case kString: {
      Local<jstring> s(env, static_cast<jstring>(call_object(env, jvalue, J.to_str)));
      if (!s) {
        null_pointer("string IValue is null");
      }
      return to_utf8(env, s.get());
    }
    case kTuple: {
      Local<jobjectArray> items(env, static_cast<jobjectArray>(call_object(env, jvalue, J.to_tuple)));
      return c10::ivalue::Tuple::create(ivalues_from_array(env, items.get()));
    }
    case kBoolList: {
      Local<jbooleanArray> a(env, static_cast<jbooleanArray>(call_object(env, jvalue, J.to_bool_list)));
      return list_from_primitive_array<bool>(env, a.get(), &JNIEnv::GetBooleanArrayRegion);
    }
    case kLongList: {
      Local<jlongArray> a(env, static_cast<jlongArray>(call_object(env, jvalue, J.to_long_list)));
      return list_from_primitive_array<int64_t>(env, a.get(), &JNIEnv::GetLongArrayRegion);
    }
    case kDoubleList: {
      Local<jdoubleArray> a(env, static_cast<jdoubleArray>(call_object(env, jvalue, J.to_double_list)));
      return list_from_primitive_array<double>(env, a.get(), &JNIEnv::GetDoubleArrayRegion);
    }
    case kTensorList: {
      Local<jobjectArray> a(env, static_cast<jobjectArray>(call_object(env, jvalue, J.to_tensor_list)));
      if (!a) {
        null_pointer("tensor list is null");
      }
      const jsize n = env->GetArrayLength(a.get());
      c10::List<at::Tensor> list;
      list.reserve(static_cast<size_t>(n));
      for (jsize i = 0; i < n; ++i) {
        Local<jobject> t(env, env->GetObjectArrayElement(a.get(), i));
        check(env);
        list.push_back(tensor_from_java(env, t.get()));
      }
      return list;
    }
    case kList: {
      Local<jobjectArray> a(env, static_cast<jobjectArray>(call_object(env, jvalue, J.to_list)));
      std::vector<at::IValue> items = ivalues_from_array(env, a.get());
      c10::impl::GenericList list(common_type(items));
      list.reserve(items.size());
      for (auto& item : items) {
        list.push_back(std::move(item));
      }
      return list;
    }
    case kDictStringKey: {
      Local<jobject> map(env, call_object(env, jvalue, J.to_dict_string_key));
      auto entries = map_entries<std::string>(
          env, map.get(), [env](jobject key) { return to_utf8(env, static_cast<jstring>(key)); });
      return dict_from_entries(std::move(entries), c10::StringType::get());
    }
    case kDictLongKey: {
      Local<jobject> map(env, call_object(env, jvalue, J.to_dict_long_key));
      auto entries = map_entries<int64_t>(env, map.get(), [env](jobject key) {
        const jlong k = env->CallLongMethod(key, J.long_value);
        check(env);
        return static_cast<int64_t>(k);
      });
      return dict_from_entries(std::move(entries), c10::IntType::get());
    }
    default:
      illegal_argument("unknown IValue type code " + std::to_string(code));
  }
}

// ---- IValues: C++ -> Java ------------------------------------------------------------------

jobject ivalue_to_java(JNIEnv* env, const at::IValue& value);

template <class Items, class Convert>
Local<jobjectArray> object_array(JNIEnv* env, jclass cls, const Items& items, Convert convert) {
  Local<jobjectArray> array(env, env->NewObjectArray(static_cast<jsize>(items.size()), cls, nullptr));
  check(env);
  jsize i = 0;
  for (const auto& item : items) {
    Local<jobject> element(env, convert(item));
    env->SetObjectArrayElement(array.get(), i++, element.get());
    check(env);
  }
  return array;
}

jobject ivalue_to_java(JNIEnv* env, const at::IValue& value) {
  if (value.isNone()) {
    return call_static(env, J.ivalue, J.optional_null);
  }
  if (value.isTensor()) {
    const at::Tensor& t = value.toTensor();
    if (!t.defined()) {
      return call_static(env, J.ivalue, J.optional_null);
    }
    Local<jobject> jt(env, tensor_to_java(env, t));
    return call_static(env, J.ivalue, J.from_tensor, jt.get());
  }
  if (value.isBool()) {
    return call_static(env, J.ivalue, J.from_bool, static_cast<jboolean>(value.toBool()));
  }
  if (value.isInt()) {
    return call_static(env, J.ivalue, J.from_long, static_cast<jlong>(value.toInt()));
  }
  if (value.isDouble()) {
    return call_static(env, J.ivalue, J.from_double, static_cast<jdouble>(value.toDouble()));
  }
  if (value.isString()) {
    Local<jstring> s(env, to_jstring(env, value.toStringRef()));
    return call_static(env, J.ivalue, J.from_string, s.get());
  }
  if (value.isTuple()) {
    const auto& elements = value.toTupleRef().elements();
    auto array = object_array(env, J.ivalue, elements, [env](const at::IValue& e) { return ivalue_to_java(env, e); });
    return call_static(env, J.ivalue, J.tuple_from, array.get());
  }
  if (value.isBoolList()) {
    const c10::List<bool> list = value.toBoolList();
    std::vector<jboolean> items;
    items.reserve(list.size());
    for (bool b : list) {
      items.push_back(b ? JNI_TRUE : JNI_FALSE);
    }
    Local<jbooleanArray> array(env, env->NewBooleanArray(static_cast<jsize>(items.size())));
    check(env);
    env->SetBooleanArrayRegion(array.get(), 0, static_cast<jsize>(items.size()), items.data());
    check(env);
    return call_static(env, J.ivalue, J.list_from_bool, array.get());
  }
  if (value.isIntList()) {
    const c10::List<int64_t> list = value.toIntList();
    std::vector<jlong> items(list.begin(), list.end());
    Local<jlongArray> array(env, env->NewLongArray(static_cast<jsize>(items.size())));
    check(env);
    env->SetLongArrayRegion(array.get(), 0, static_cast<jsize>(items.size()), items.data());
    check(env);
    return call_static(env, J.ivalue, J.list_from_long, array.get());
  }
  if (value.isDoubleList()) {
    const c10::List<double> list = value.toDoubleList();
    std::vector<jdouble> items(list.begin(), list.end());
    Local<jdoubleArray> array(env, env->NewDoubleArray(static_cast<jsize>(items.size())));
    check(env);
    env->SetDoubleArrayRegion(array.get(), 0, static_cast<jsize>(items.size()), items.data());
    check(env);
    return call_static(env, J.ivalue, J.list_from_double, array.get());
  }
  if (value.isTensorList()) {
    const c10::List<at::Tensor> list = value.toTensorList();
    std::vector<at::Tensor> tensors(list.begin(), list.end());
    auto array = object_array(env, J.tensor, tensors, [env](const at::Tensor& t) { return tensor_to_java(env, t); });
    return call_static(env, J.ivalue, J.list_from_tensor, array.get());
  }
  if (value.isList()) {
    const c10::impl::GenericList list = value.toList();
    std::vector<at::IValue> items(list.begin(), list.end());
    auto array = object_array(env, J.ivalue, items, [env](const at::IValue& e) { return ivalue_to_java(env, e); });
    return call_static(env, J.ivalue, J.list_from_ivalue, array.get());
  }
  if (value.isGenericDict()) {
    const c10::impl::GenericDict dict = value.toGenericDict();
    const c10::TypeKind key_kind = dict.keyType()->kind();
    if (key_kind != c10::TypeKind::StringType && key_kind != c10::TypeKind::IntType) {
      illegal_argument("dict with key type " + dict.keyType()->str() +
                       " has no org.pytorch.IValue counterpart (only str and int keys)");
    }
    Local<jobject> map(env, env->NewObject(J.hash_map, J.hash_map_init, static_cast<jint>(dict.size() * 2 + 1)));
    check(env);
    for (const auto& entry : dict) {
      Local<jobject> key(env, key_kind == c10::TypeKind::StringType
                                  ? to_jstring(env, entry.key().toStringRef())
                                  : call_static(env, J.long_class, J.long_value_of, static_cast<jlong>(entry.key().toInt())));
      Local<jobject> jvalue(env, ivalue_to_java(env, entry.value()));
      Local<jobject> previous(env, call_object(env, map.get(), J.map_put, key.get(), jvalue.get()));
    }
    return call_static(env, J.ivalue,
                       key_kind == c10::TypeKind::StringType ? J.dict_string_key_from : J.dict_long_key_from,
                       map.get());
  }
  illegal_argument("TorchScript value of type " + value.type()->str() + " has no org.pytorch.IValue counterpart");
}

// ---- the module peer and NativePeer's natives ----------------------------------------------

struct ModulePeer final : NativeObject {
  explicit ModulePeer(torch::jit::Module m) : module(std::move(m)) {}
  torch::jit::Module module;
};

// this.mHybridData.mDestructor.mNativePointer; 0 after Module.destroy().
ModulePeer& peer_of(JNIEnv* env, jobject self) {
  const PeerIds& ids = peer_ids(env);
  Local<jobject> hybrid(env, env->GetObjectField(self, ids.peer_hybrid_data));
  if (!hybrid) {
    null_pointer("NativePeer has no HybridData");
  }
  Local<jobject> destructor(env, env->GetObjectField(hybrid.get(), ids.hybrid_destructor));
  if (!destructor) {
    null_pointer("HybridData has no destructor");
  }
  const jlong pointer = env->GetLongField(destructor.get(), ids.destructor_pointer);
  if (pointer == 0) {
    null_pointer("the Module was destroyed (Module.destroy() was called)");
  }
  auto* peer = dynamic_cast<ModulePeer*>(reinterpret_cast<NativeObject*>(pointer));
  if (peer == nullptr) {
    throw JavaError{J.illegal_state, "NativePeer does not hold a module"};
  }
  return *peer;
}

jobject JNICALL init_hybrid(JNIEnv* env, jclass /*cls*/, jstring jpath, jobject jextra_files, jint device) {
  return guarded(env, [&]() -> jobject {
    if (device != kDeviceCpu) {
      illegal_argument("device code " + std::to_string(device) +
                       " is not supported: this bridge uses the CPU-only libtorch of the torch wheel, use Device.CPU");
    }
    if (jpath == nullptr) {
      null_pointer("model path is null");
    }
    const std::string path = to_utf8(env, jpath);

    torch::jit::ExtraFilesMap extra_files;
    bool has_extra = false;
    if (jextra_files != nullptr) {
      const jint size = env->CallIntMethod(jextra_files, J.map_size);
      check(env);
      has_extra = size > 0;
    }
    if (has_extra) {
      Local<jobject> keys(env, call_object(env, jextra_files, J.map_key_set));
      Local<jobjectArray> array(env, static_cast<jobjectArray>(call_object(env, keys.get(), J.collection_to_array)));
      const jsize n = env->GetArrayLength(array.get());
      for (jsize i = 0; i < n; ++i) {
        Local<jobject> key(env, env->GetObjectArrayElement(array.get(), i));
        check(env);
        if (!key) {
          null_pointer("extraFiles key is null");
        }
        extra_files[to_utf8(env, static_cast<jstring>(key.get()))] = "";
      }
    }

    std::unique_ptr<ModulePeer> peer;
    {
      CallGuard guard;
      torch::jit::Module module = torch::jit::load(path, c10::Device(c10::kCPU), extra_files);
      module.eval();
      peer = std::make_unique<ModulePeer>(std::move(module));
    }

    if (has_extra) {
      for (const auto& [name, content] : extra_files) {
        Local<jstring> key(env, to_jstring(env, name));
        Local<jstring> value(env, to_jstring(env, content));
        Local<jobject> previous(env, call_object(env, jextra_files, J.map_put, key.get(), value.get()));
      }
    }

    const PeerIds& ids = peer_ids(env);
    Local<jobject> hybrid(env, env->NewObject(J.hybrid_data, ids.hybrid_init));
    check(env);
    Local<jobject> destructor(env, env->GetObjectField(hybrid.get(), ids.hybrid_destructor));
    env->SetLongField(destructor.get(), ids.destructor_pointer,
                      reinterpret_cast<jlong>(static_cast<NativeObject*>(peer.release())));
    return hybrid.release();
  });
}

jobject JNICALL forward(JNIEnv* env, jobject self, jobjectArray jinputs) {
  return guarded(env, [&]() -> jobject {
    ModulePeer& peer = peer_of(env, self);
    std::vector<at::IValue> inputs = ivalues_from_array(env, jinputs);
    at::IValue output;
    {
      CallGuard guard;
      output = peer.module.forward(std::move(inputs));
    }
    return ivalue_to_java(env, output);
  });
}

jobject JNICALL run_method(JNIEnv* env, jobject self, jstring jname, jobjectArray jinputs) {
  return guarded(env, [&]() -> jobject {
    ModulePeer& peer = peer_of(env, self);
    if (jname == nullptr) {
      null_pointer("method name is null");
    }
    const std::string name = to_utf8(env, jname);
    std::optional<torch::jit::Method> method = peer.module.find_method(name);
    if (!method) {
      illegal_argument("Undefined method " + name);
    }
    std::vector<at::IValue> inputs = ivalues_from_array(env, jinputs);
    at::IValue output;
    {
      CallGuard guard;
      output = (*method)(std::move(inputs));
    }
    return ivalue_to_java(env, output);
  });
}

// ---- JNI_OnLoad: configuration, registration, report -----------------------------------------

std::optional<std::string> env_setting(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') {
    return std::nullopt;
  }
  return std::string(value);
}

int positive_int_setting(const char* name, const std::string& text) {
  int value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < 1) {
    illegal_argument(std::string(name) + " must be a positive integer, got '" + text + "'");
  }
  return value;
}

void configure() {
  if (auto v = env_setting("PYTORCH_JNI_NUM_THREADS")) {
    at::set_num_threads(positive_int_setting("PYTORCH_JNI_NUM_THREADS", *v));
  }
  if (auto v = env_setting("PYTORCH_JNI_NUM_INTEROP_THREADS")) {
    at::set_num_interop_threads(positive_int_setting("PYTORCH_JNI_NUM_INTEROP_THREADS", *v));
  }
  if (auto v = env_setting("PYTORCH_JNI_GRAD_MODE")) {
    if (*v == "inference") {
      g_config.grad_mode = GradMode::kInference;
    } else if (*v == "no_grad") {
      g_config.grad_mode = GradMode::kNoGrad;
    } else if (*v == "default") {
      g_config.grad_mode = GradMode::kDefault;
    } else {
      illegal_argument("PYTORCH_JNI_GRAD_MODE must be inference, no_grad or default, got '" + *v + "'");
    }
  }
  if (auto v = env_setting("PYTORCH_JNI_GRAPH_OPTIMIZER")) {
    if (*v != "0" && *v != "1") {
      illegal_argument("PYTORCH_JNI_GRAPH_OPTIMIZER must be 0 or 1, got '" + *v + "'");
    }
    g_config.graph_optimizer = *v == "1";
  }
}

std::string library_of(const void* address) {
  Dl_info info{};
  if (dladdr(address, &info) == 0 || info.dli_fname == nullptr) {
    return "unknown";
  }
  return info.dli_fname;
}

void publish_properties(JNIEnv* env) {
  Local<jclass> system(env, env->FindClass("java/lang/System"));
  check(env);
  jmethodID set_property =
      static_method_id(env, system.get(), "setProperty", "(Ljava/lang/String;Ljava/lang/String;)Ljava/lang/String;");
  auto set = [&](const char* key, const std::string& value) {
    Local<jstring> k(env, to_jstring(env, key));
    Local<jstring> v(env, to_jstring(env, value));
    Local<jobject> previous(env, call_static(env, system.get(), set_property, k.get(), v.get()));
  };
  set("pytorch.jni.libtorch_version", TORCH_VERSION);
  set("pytorch.jni.libtorch_path", library_of(reinterpret_cast<const void*>(&at::get_num_threads)));
  set("pytorch.jni.bridge_path", library_of(reinterpret_cast<const void*>(&library_of)));
  set("pytorch.jni.num_threads", std::to_string(at::get_num_threads()));
  set("pytorch.jni.num_interop_threads", std::to_string(at::get_num_interop_threads()));
  set("pytorch.jni.grad_mode", grad_mode_name(g_config.grad_mode));
  set("pytorch.jni.graph_optimizer", g_config.graph_optimizer ? "1" : "0");
}

void register_natives(JNIEnv* env) {
  // Exactly the natives the jar declares (initHybridAndroidAsset is Android-only).
  const JNINativeMethod methods[] = {
      {const_cast<char*>("initHybrid"),
       const_cast<char*>("(Ljava/lang/String;Ljava/util/Map;I)Lcom/facebook/jni/HybridData;"),
       reinterpret_cast<void*>(&init_hybrid)},
      {const_cast<char*>("forward"), const_cast<char*>("([Lorg/pytorch/IValue;)Lorg/pytorch/IValue;"),
       reinterpret_cast<void*>(&forward)},
      {const_cast<char*>("runMethod"),
       const_cast<char*>("(Ljava/lang/String;[Lorg/pytorch/IValue;)Lorg/pytorch/IValue;"),
       reinterpret_cast<void*>(&run_method)},
  };
  if (env->RegisterNatives(J.native_peer, methods, std::size(methods)) != JNI_OK) {
    check(env);
    throw JavaError{J.illegal_state, "RegisterNatives failed for org.pytorch.NativePeer"};
  }
}

}  // namespace

GradMode configured_grad_mode() noexcept { return g_config.grad_mode; }

}  // namespace pytorch_jni_bridge

extern "C" JNIEXPORT jint JNICALL JNI_OnLoad(JavaVM* vm, void* /*reserved*/) {
  using namespace pytorch_jni_bridge;
  JNIEnv* env = nullptr;
  if (vm->GetEnv(reinterpret_cast<void**>(&env), JNI_VERSION_1_8) != JNI_OK) {
    return JNI_ERR;
  }
  // A pending exception makes System.loadLibrary throw it, so a bad setting is reported in Java.
  const bool ok = guarded(env, [&] {
    cache_java(env);
    configure();
    register_natives(env);
    publish_properties(env);
    return true;
  });
  return ok ? JNI_VERSION_1_8 : JNI_ERR;
}
