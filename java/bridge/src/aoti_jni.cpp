// libpytorch_jni.so, the natives of bridge.AotiModel (java/bridge/java/bridge/AotiModel.java): an
// AOTInductor package (.pt2: torch.export + torch._inductor.aoti_compile_and_package) loaded with
// torch::inductor::AOTIModelPackageLoader and run on direct buffers bound once: each input tensor wraps its
// input buffer (from_blob, no copy), each run copies the outputs (pytree order, as run returns them) into its
// slot of the output buffer (which holds `slots` outputs, one after the other), converted to float32.
//
// Its own translation unit with only the headers it needs (the loader, from_blob, the grad-mode guards):
// pytorch_jni.cpp's torch/script.h would double its compile time. The grad mode is the bridge's
// (PYTORCH_JNI_GRAD_MODE, read in JNI_OnLoad); threads are set there too, for every model of the process.
#include <jni.h>

#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <ATen/ops/from_blob.h>
#include <c10/core/GradMode.h>
#include <c10/core/InferenceMode.h>
#include <c10/util/Exception.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>

#include "bridge_config.h"
#include "jni_util.h"

namespace pytorch_jni_bridge {
namespace {

constexpr const char* kIllegalArgument = "java/lang/IllegalArgumentException";
constexpr const char* kIllegalState = "java/lang/IllegalStateException";

// A Java exception to raise: its class's binary name and the message.
struct Refusal {
  const char* cls;
  std::string message;
};

// The bridge's grad mode around a load or a run: the same choice NativePeer's calls make.
class GradGuard {
 public:
  GradGuard() {
    switch (configured_grad_mode()) {
      case GradMode::kInference:
        inference_.emplace();
        break;
      case GradMode::kNoGrad:
        no_grad_.emplace();
        break;
      case GradMode::kDefault:
        break;
    }
  }
  GradGuard(const GradGuard&) = delete;
  GradGuard& operator=(const GradGuard&) = delete;

 private:
  std::optional<c10::InferenceMode> inference_;
  std::optional<c10::NoGradGuard> no_grad_;
};

// What one AotiModel's handle points to: the loader, shared with the AotiModels share() made, and its own bound
// buffers.
struct Aoti {
  std::shared_ptr<torch::inductor::AOTIModelPackageLoader> loader;
  std::vector<at::Tensor> inputs;  // one tensor over each bound input buffer; empty until bind
  float* output = nullptr;         // the bound output buffer: `slots` outputs one after the other
  int64_t output_floats = 0;       // the floats of one output (one slot)
  int64_t slots = 1;
};

// AotiModel.DType's codes.
at::ScalarType scalar_type_of(jint code) {
  switch (code) {
    case 1:
      return at::kFloat;
    case 2:
      return at::kDouble;
    case 3:
      return at::kLong;
    case 4:
      return at::kInt;
    case 5:
      return at::kBool;
    default:
      throw Refusal{kIllegalArgument, "unknown AotiModel.DType code " + std::to_string(code)};
  }
}

std::string first_line(const char* text) {
  std::string s(text == nullptr ? "" : text);
  const size_t end = s.find('\n');
  return end == std::string::npos ? s : s.substr(0, end);
}

void raise(JNIEnv* env, const char* cls, const std::string& message) noexcept {
  Local<jclass> c(env, env->FindClass(cls));
  if (c) {
    raise_java(env, c.get(), message);
  }  // else FindClass left NoClassDefFoundError pending
}

// Calls `body`; every C++ exception becomes a Java one (a libtorch error: IllegalStateException).
template <class F>
auto guarded(JNIEnv* env, F&& body) noexcept -> decltype(body()) {
  try {
    return body();
  } catch (const JavaPending&) {
  } catch (const Refusal& r) {
    raise(env, r.cls, r.message);
  } catch (const c10::Error& e) {
    raise(env, kIllegalState, first_line(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    raise(env, kIllegalState, first_line(e.what()));
  } catch (...) {
    raise(env, kIllegalState, "unknown C++ exception in bridge.AotiModel");
  }
  return decltype(body())();
}

Aoti& of(jlong handle) { return *reinterpret_cast<Aoti*>(handle); }

std::string shape_text(c10::IntArrayRef shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    s += (i ? ", " : "") + std::to_string(shape[i]);
  }
  return s + "]";
}

// A direct buffer's address and capacity (elements); `what` names it in the refusal.
std::pair<float*, jlong> direct(JNIEnv* env, jobject buffer, const char* what) {
  auto* address = static_cast<float*>(env->GetDirectBufferAddress(buffer));
  if (address == nullptr) {
    throw Refusal{kIllegalArgument, std::string(what) + " is not a direct buffer"};
  }
  return {address, env->GetDirectBufferCapacity(buffer)};
}

}  // namespace
}  // namespace pytorch_jni_bridge

using pytorch_jni_bridge::Aoti;
using pytorch_jni_bridge::guarded;
using pytorch_jni_bridge::Refusal;

// static native long nativeLoad(String path, int runners): `runners` model instances in the loader's container
// (num_runners), so that many runs proceed at once; AotiModel.load has checked it is at least 1
extern "C" JNIEXPORT jlong JNICALL Java_bridge_AotiModel_nativeLoad(JNIEnv* env, jclass /*cls*/, jstring jpath,
                                                                   jint runners) {
  return guarded(env, [&]() -> jlong {
    const std::string path = pytorch_jni_bridge::to_utf8(env, jpath);
    auto aoti = std::make_unique<Aoti>();
    try {
      pytorch_jni_bridge::GradGuard guard;
      aoti->loader = std::make_shared<torch::inductor::AOTIModelPackageLoader>(path, "model", false,
                                                                               static_cast<size_t>(runners));
    } catch (const c10::Error& e) {
      throw Refusal{pytorch_jni_bridge::kIllegalArgument, path + " is not a loadable AOTInductor package: " +
                                                              pytorch_jni_bridge::first_line(e.what_without_backtrace())};
    } catch (const std::exception& e) {
      throw Refusal{pytorch_jni_bridge::kIllegalArgument,
                    path + " is not a loadable AOTInductor package: " + pytorch_jni_bridge::first_line(e.what())};
    }
    return reinterpret_cast<jlong>(aoti.release());
  });
}

// static native long nativeShare(long handle): a new, unbound handle over the same loader
extern "C" JNIEXPORT jlong JNICALL Java_bridge_AotiModel_nativeShare(JNIEnv* env, jclass /*cls*/, jlong handle) {
  return guarded(env, [&]() -> jlong {
    auto aoti = std::make_unique<Aoti>();
    aoti->loader = pytorch_jni_bridge::of(handle).loader;
    return reinterpret_cast<jlong>(aoti.release());
  });
}

// static native void nativeBind(long handle, Buffer[] inputs, long[][] shapes, int[] dtypes, FloatBuffer output,
// int slots): AotiModel.bind has checked every buffer's size against its shape and dtype (it knows the buffers'
// types) and that the output buffer holds a whole number of slots.
extern "C" JNIEXPORT void JNICALL Java_bridge_AotiModel_nativeBind(JNIEnv* env, jclass /*cls*/, jlong handle,
                                                                   jobjectArray jinputs, jobjectArray jshapes,
                                                                   jintArray jdtypes, jobject output, jint slots) {
  guarded(env, [&] {
    Aoti& aoti = pytorch_jni_bridge::of(handle);
    const jsize n = env->GetArrayLength(jinputs);
    std::vector<jint> dtypes(static_cast<size_t>(n));
    env->GetIntArrayRegion(jdtypes, 0, n, dtypes.data());
    pytorch_jni_bridge::check(env);
    const auto [out, out_floats] = pytorch_jni_bridge::direct(env, output, "the output buffer");
    std::vector<at::Tensor> inputs;
    pytorch_jni_bridge::GradGuard guard;
    for (jsize k = 0; k < n; ++k) {
      pytorch_jni_bridge::Local<jobject> buffer(env, env->GetObjectArrayElement(jinputs, k));
      pytorch_jni_bridge::check(env);
      pytorch_jni_bridge::Local<jlongArray> jshape(env, static_cast<jlongArray>(env->GetObjectArrayElement(jshapes, k)));
      pytorch_jni_bridge::check(env);
      void* in = env->GetDirectBufferAddress(buffer.get());
      if (in == nullptr) {
        throw Refusal{pytorch_jni_bridge::kIllegalArgument, "input " + std::to_string(k) + " is not a direct buffer"};
      }
      std::vector<int64_t> shape(static_cast<size_t>(env->GetArrayLength(jshape.get())));
      env->GetLongArrayRegion(jshape.get(), 0, static_cast<jsize>(shape.size()), shape.data());
      pytorch_jni_bridge::check(env);
      const at::ScalarType type = pytorch_jni_bridge::scalar_type_of(dtypes[static_cast<size_t>(k)]);
      inputs.push_back(at::from_blob(in, shape, at::TensorOptions().dtype(type)));
    }
    aoti.inputs = std::move(inputs);
    aoti.output = out;
    aoti.slots = slots;
    aoti.output_floats = out_floats / slots;
  });
}

// static native void nativeRun(long handle, int slot): the bound input through the package into the bound
// output's slot `slot` (AotiModel.run has checked it is one)
extern "C" JNIEXPORT void JNICALL Java_bridge_AotiModel_nativeRun(JNIEnv* env, jclass /*cls*/, jlong handle, jint slot) {
  guarded(env, [&] {
    Aoti& aoti = pytorch_jni_bridge::of(handle);
    std::vector<at::Tensor> outputs;
    {
      pytorch_jni_bridge::GradGuard guard;
      outputs = aoti.loader->run(aoti.inputs);
    }
    int64_t values = 0;
    for (size_t k = 0; k < outputs.size(); ++k) {
      if (!outputs[k].defined()) {
        throw Refusal{pytorch_jni_bridge::kIllegalState,
                      "the package's output " + std::to_string(k) + " is None: AotiModel copies tensors only"};
      }
      values += outputs[k].numel();
    }
    if (values != aoti.output_floats) {  // AOTInductor does not check an input's shape unless told to
      std::string shapes;
      for (const at::Tensor& x : aoti.inputs) {
        shapes += (shapes.empty() ? "" : ", ") + pytorch_jni_bridge::shape_text(x.sizes());
      }
      throw Refusal{pytorch_jni_bridge::kIllegalArgument,
                    (outputs.size() == 1 ? "the output has " : "the " + std::to_string(outputs.size()) + " outputs have ") +
                        std::to_string(values) + " floats, " + (aoti.slots == 1 ? "the output buffer holds " : "a slot of the output buffer holds ") +
                        std::to_string(aoti.output_floats) + ": export the package for input" +
                        (aoti.inputs.size() == 1 ? " " : "s ") + shapes + " (AOTInductor does not check it)"};
    }
    float* to = aoti.output + slot * aoti.output_floats;
    for (const at::Tensor& x : outputs) {  // one float32 tensor (the built-in models): contiguous() is a no-op
      const at::Tensor y = x.scalar_type() == at::kFloat ? x.contiguous() : x.to(at::kFloat).contiguous();
      std::memcpy(to, y.const_data_ptr<float>(), static_cast<size_t>(y.numel()) * sizeof(float));
      to += y.numel();
    }
  });
}

// static native void nativeFree(long handle)
extern "C" JNIEXPORT void JNICALL Java_bridge_AotiModel_nativeFree(JNIEnv* /*env*/, jclass /*cls*/, jlong handle) {
  delete reinterpret_cast<Aoti*>(handle);  // the last over a loader: ~AOTIModelPackageLoader removes its folder
}
