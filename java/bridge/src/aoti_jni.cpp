// libpytorch_jni.so, the natives of bridge.AotiModel (java/bridge/java/bridge/AotiModel.java): an
// AOTInductor package (.pt2: torch.export + torch._inductor.aoti_compile_and_package) loaded with
// torch::inductor::AOTIModelPackageLoader and run on direct buffers bound once: the input tensor wraps the
// input buffer (from_blob, no copy), each run copies the one output into the output buffer.
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

// What one AotiModel's handle points to.
struct Aoti {
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> loader;
  std::vector<at::Tensor> inputs;  // one tensor over the bound input buffer; empty until bind
  float* output = nullptr;         // the bound output buffer
  int64_t output_floats = 0;
};

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

// static native long nativeLoad(String path)
extern "C" JNIEXPORT jlong JNICALL Java_bridge_AotiModel_nativeLoad(JNIEnv* env, jclass /*cls*/, jstring jpath) {
  return guarded(env, [&]() -> jlong {
    const std::string path = pytorch_jni_bridge::to_utf8(env, jpath);
    auto aoti = std::make_unique<Aoti>();
    try {
      pytorch_jni_bridge::GradGuard guard;
      aoti->loader = std::make_unique<torch::inductor::AOTIModelPackageLoader>(path);
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

// static native void nativeBind(long handle, FloatBuffer input, long[] inputShape, FloatBuffer output)
extern "C" JNIEXPORT void JNICALL Java_bridge_AotiModel_nativeBind(JNIEnv* env, jclass /*cls*/, jlong handle,
                                                                   jobject input, jlongArray jshape, jobject output) {
  guarded(env, [&] {
    Aoti& aoti = pytorch_jni_bridge::of(handle);
    const auto [in, in_floats] = pytorch_jni_bridge::direct(env, input, "the input buffer");
    const auto [out, out_floats] = pytorch_jni_bridge::direct(env, output, "the output buffer");
    std::vector<int64_t> shape(static_cast<size_t>(env->GetArrayLength(jshape)));
    env->GetLongArrayRegion(jshape, 0, static_cast<jsize>(shape.size()), shape.data());
    pytorch_jni_bridge::check(env);
    int64_t floats = 1;
    for (int64_t d : shape) {
      floats *= d;
    }
    if (floats != in_floats) {
      throw Refusal{pytorch_jni_bridge::kIllegalArgument, "the input shape holds " + std::to_string(floats) +
                                                              " floats, the input buffer " + std::to_string(in_floats)};
    }
    pytorch_jni_bridge::GradGuard guard;
    aoti.inputs = {at::from_blob(in, shape, at::TensorOptions().dtype(at::kFloat))};
    aoti.output = out;
    aoti.output_floats = out_floats;
  });
}

// static native void nativeRun(long handle): the bound input through the package into the bound output
extern "C" JNIEXPORT void JNICALL Java_bridge_AotiModel_nativeRun(JNIEnv* env, jclass /*cls*/, jlong handle) {
  guarded(env, [&] {
    Aoti& aoti = pytorch_jni_bridge::of(handle);
    std::vector<at::Tensor> outputs;
    {
      pytorch_jni_bridge::GradGuard guard;
      outputs = aoti.loader->run(aoti.inputs);
    }
    if (outputs.size() != 1 || outputs[0].scalar_type() != at::kFloat) {
      throw Refusal{pytorch_jni_bridge::kIllegalState,
                    "the package returns " + std::to_string(outputs.size()) +
                        " outputs: AotiModel takes a model that returns one float tensor"};
    }
    const at::Tensor y = outputs[0].contiguous();
    if (y.numel() != aoti.output_floats) {  // AOTInductor does not check an input's shape unless told to
      throw Refusal{pytorch_jni_bridge::kIllegalArgument,
                    "the output has " + std::to_string(y.numel()) + " floats, the output buffer holds " +
                        std::to_string(aoti.output_floats) + ": export the package for input " +
                        pytorch_jni_bridge::shape_text(aoti.inputs[0].sizes()) + " (AOTInductor does not check it)"};
    }
    std::memcpy(aoti.output, y.const_data_ptr<float>(), static_cast<size_t>(y.numel()) * sizeof(float));
  });
}

// static native void nativeFree(long handle)
extern "C" JNIEXPORT void JNICALL Java_bridge_AotiModel_nativeFree(JNIEnv* /*env*/, jclass /*cls*/, jlong handle) {
  delete reinterpret_cast<Aoti*>(handle);  // ~AOTIModelPackageLoader removes its extraction folder
}
