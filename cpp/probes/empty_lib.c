/* The empty native calls of the cost decomposition (harness/probes.py): each returns its argument at once.
 * One shared library holds the C++ probe's out-of-line target, the JNI method of EmptyJni.java and the FFM
 * downcall target of EmptyFfm.java, so every crossing lands in the same kind of code: a function in a shared
 * library, as a call into libtorch does. */
#if __has_include(<jni.h>)
#include <jni.h>
#define HAS_JNI 1
#endif

__attribute__((noinline, visibility("default"))) void* empty_call(void* x) { return x; }

#ifdef HAS_JNI
JNIEXPORT jobject JNICALL Java_EmptyJni_call(JNIEnv* env, jobject self, jobject x) {
  (void)env;
  (void)self;
  return x;
}
#endif
