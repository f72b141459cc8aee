#include "jni_util.h"

#include <cstdint>
#include <vector>

namespace pytorch_jni_bridge {

namespace {

constexpr char32_t kReplacement = 0xFFFD;

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

void append_utf16(std::vector<jchar>& out, char32_t cp) {
  if (cp < 0x10000) {
    out.push_back(static_cast<jchar>(cp));
  } else {
    cp -= 0x10000;
    out.push_back(static_cast<jchar>(0xD800 + (cp >> 10)));
    out.push_back(static_cast<jchar>(0xDC00 + (cp & 0x3FF)));
  }
}

bool is_high_surrogate(jchar c) { return c >= 0xD800 && c <= 0xDBFF; }
bool is_low_surrogate(jchar c) { return c >= 0xDC00 && c <= 0xDFFF; }

}  // namespace

std::string to_utf8(JNIEnv* env, jstring s) {
  const jsize n = env->GetStringLength(s);
  std::vector<jchar> units(static_cast<size_t>(n));
  env->GetStringRegion(s, 0, n, units.data());
  check(env);
  std::string out;
  out.reserve(units.size());
  for (size_t i = 0; i < units.size(); ++i) {
    const jchar c = units[i];
    if (is_high_surrogate(c) && i + 1 < units.size() && is_low_surrogate(units[i + 1])) {
      append_utf8(out, 0x10000 + ((char32_t{c} - 0xD800) << 10) + (char32_t{units[i + 1]} - 0xDC00));
      ++i;
    } else if (is_high_surrogate(c) || is_low_surrogate(c)) {
      append_utf8(out, kReplacement);
    } else {
      append_utf8(out, c);
    }
  }
  return out;
}

jstring to_jstring(JNIEnv* env, std::string_view utf8) {
  std::vector<jchar> units;
  units.reserve(utf8.size());
  const auto* s = reinterpret_cast<const unsigned char*>(utf8.data());
  const size_t n = utf8.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char lead = s[i];
    size_t len = 0;
    char32_t cp = 0;
    char32_t min = 0;
    if (lead < 0x80) {
      units.push_back(lead);
      ++i;
      continue;
    }
    if ((lead >> 5) == 0x6) {
      len = 2, cp = lead & 0x1F, min = 0x80;
    } else if ((lead >> 4) == 0xE) {
      len = 3, cp = lead & 0x0F, min = 0x800;
    } else if ((lead >> 3) == 0x1E) {
      len = 4, cp = lead & 0x07, min = 0x10000;
    }
    bool ok = len != 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) {
      ok = (s[i + k] & 0xC0) == 0x80;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    ok = ok && cp >= min && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    if (ok) {
      append_utf16(units, cp);
      i += len;
    } else {
      append_utf16(units, kReplacement);
      ++i;
    }
  }
  jstring result = env->NewString(units.data(), static_cast<jsize>(units.size()));
  check(env);
  return result;
}

jclass global_class(JNIEnv* env, const char* name) {
  Local<jclass> local(env, env->FindClass(name));
  check(env);
  auto global = static_cast<jclass>(env->NewGlobalRef(local.get()));
  check(env);
  return global;
}

jmethodID method_id(JNIEnv* env, jclass cls, const char* name, const char* signature) {
  jmethodID id = env->GetMethodID(cls, name, signature);
  check(env);
  return id;
}

jmethodID static_method_id(JNIEnv* env, jclass cls, const char* name, const char* signature) {
  jmethodID id = env->GetStaticMethodID(cls, name, signature);
  check(env);
  return id;
}

jfieldID field_id(JNIEnv* env, jclass cls, const char* name, const char* signature) {
  jfieldID id = env->GetFieldID(cls, name, signature);
  check(env);
  return id;
}

void raise_java(JNIEnv* env, jclass cls, const std::string& message) noexcept {
  if (env->ExceptionCheck()) {
    return;  // keep the first exception
  }
  try {
    Local<jclass> fallback(env, cls == nullptr ? env->FindClass("java/lang/RuntimeException") : nullptr);
    if (env->ExceptionCheck()) {
      return;
    }
    if (cls == nullptr) {
      cls = fallback.get();
    }
    // Built through NewString rather than ThrowNew so any UTF-8 message survives intact.
    jmethodID ctor = env->GetMethodID(cls, "<init>", "(Ljava/lang/String;)V");
    if (env->ExceptionCheck()) {
      return;
    }
    Local<jstring> text(env, to_jstring(env, message));
    Local<jobject> exception(env, env->NewObject(cls, ctor, text.get()));
    if (env->ExceptionCheck()) {
      return;
    }
    env->Throw(static_cast<jthrowable>(exception.get()));
  } catch (...) {
    if (!env->ExceptionCheck() && cls != nullptr) {
      env->ThrowNew(cls, "pytorch_jni: error while reporting a native error");
    }
  }
}

}  // namespace pytorch_jni_bridge
