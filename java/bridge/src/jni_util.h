// Small JNI helpers with no torch in them: scoped local references, Java exceptions as C++
// exceptions inside the bridge, and UTF-8 <-> java.lang.String conversion.
#pragma once

#include <jni.h>

#include <string>
#include <string_view>
#include <utility>

namespace pytorch_jni_bridge {

// Thrown when a Java exception is already pending: the entry point returns and lets it fly.
struct JavaPending {};

// Thrown to raise a Java exception of class `cls` (a global reference) with `message`.
struct JavaError {
  jclass cls;
  std::string message;
};

// Throws JavaPending if the last call into Java left an exception pending.
inline void check(JNIEnv* env) {
  if (env->ExceptionCheck()) {
    throw JavaPending{};
  }
}

// Owns one local reference and deletes it when it goes out of scope.
template <class T = jobject>
class Local {
 public:
  Local(JNIEnv* env, T ref) noexcept : env_(env), ref_(ref) {}
  Local(const Local&) = delete;
  Local& operator=(const Local&) = delete;
  Local(Local&& other) noexcept : env_(other.env_), ref_(std::exchange(other.ref_, nullptr)) {}
  Local& operator=(Local&&) = delete;
  ~Local() {
    if (ref_ != nullptr) {
      env_->DeleteLocalRef(ref_);
    }
  }
  T get() const noexcept { return ref_; }
  explicit operator bool() const noexcept { return ref_ != nullptr; }
  // Hands the reference to the caller (typically: returned to Java).
  T release() noexcept { return std::exchange(ref_, nullptr); }

 private:
  JNIEnv* env_;
  T ref_;
};

// java.lang.String -> UTF-8 (unpaired surrogates become U+FFFD).
std::string to_utf8(JNIEnv* env, jstring s);

// UTF-8 -> new java.lang.String local reference (invalid bytes become U+FFFD).
jstring to_jstring(JNIEnv* env, std::string_view utf8);

// FindClass + NewGlobalRef; throws JavaPending (NoClassDefFoundError) if missing.
jclass global_class(JNIEnv* env, const char* name);
jmethodID method_id(JNIEnv* env, jclass cls, const char* name, const char* signature);
jmethodID static_method_id(JNIEnv* env, jclass cls, const char* name, const char* signature);
jfieldID field_id(JNIEnv* env, jclass cls, const char* name, const char* signature);

// Raises `cls(message)` in Java unless an exception is already pending. Never throws:
// it is what the entry points call from their catch blocks.
void raise_java(JNIEnv* env, jclass cls, const std::string& message) noexcept;

}  // namespace pytorch_jni_bridge
