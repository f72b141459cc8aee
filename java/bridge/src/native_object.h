// Common header of every native object whose lifetime a com.facebook.jni.HybridData owns.
//
// HybridData$Destructor.mNativePointer holds a NativeObject*; libfbjni.so's deleteNative
// frees it through the virtual destructor, so it needs to know nothing about torch.
#pragma once

namespace pytorch_jni_bridge {

struct NativeObject {
  NativeObject() = default;
  NativeObject(const NativeObject&) = delete;
  NativeObject& operator=(const NativeObject&) = delete;
  virtual ~NativeObject() = default;
};

}  // namespace pytorch_jni_bridge
