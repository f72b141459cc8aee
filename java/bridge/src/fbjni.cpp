// libfbjni.so: the one native method of the fbjni-java-only jar that pytorch_java_only needs.
// No torch here: peers are freed through NativeObject's virtual destructor.
#include <jni.h>

#include "native_object.h"

extern "C" JNIEXPORT jint JNICALL JNI_OnLoad(JavaVM* /*vm*/, void* /*reserved*/) {
  return JNI_VERSION_1_8;
}

// static native void com.facebook.jni.HybridData$Destructor.deleteNative(long)
// Called by destruct() (Module.destroy() or the DestructorThread), which zeroes the pointer
// afterwards; 0 means "already freed" and is a no-op. Destructors are noexcept, so nothing
// can unwind into the JVM from here.
extern "C" JNIEXPORT void JNICALL
Java_com_facebook_jni_HybridData_00024Destructor_deleteNative(JNIEnv* /*env*/, jclass /*cls*/,
                                                               jlong pointer) {
  if (pointer == 0) {
    return;
  }
  delete reinterpret_cast<pytorch_jni_bridge::NativeObject*>(pointer);
}
