// What JNI_OnLoad (pytorch_jni.cpp) read from PYTORCH_JNI_GRAD_MODE, for every translation unit that runs a
// model: org.pytorch's NativePeer (TorchScript) and bridge.AotiModel (AOTInductor) use the same grad mode.
#pragma once

namespace pytorch_jni_bridge {

enum class GradMode { kInference, kNoGrad, kDefault };

// The grad mode in force (set once in JNI_OnLoad, before any model is loaded).
GradMode configured_grad_mode() noexcept;

}  // namespace pytorch_jni_bridge
