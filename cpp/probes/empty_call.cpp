// C++'s empty native call (harness/probes.py): empty_call, out of line in libempty_call.so, called in the
// plain loop a user writes, ROUNDS runs of CALLS calls with one clock read around each run. Prints one JSON
// line: the nanoseconds per call of every run.
#include <chrono>
#include <cstdio>
#include <cstdlib>

extern "C" void* empty_call(void* x);

int main(int argc, char** argv) {
  const long calls = argc > 1 ? std::atol(argv[1]) : 1000000;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 20;
  static int anchor = 0;
  void* p = &anchor;
  for (long i = 0; i < calls; ++i) {  // warm-up: one run, not reported
    p = empty_call(p);
  }
  std::printf("{\"probe\": \"cpp-call\", \"ns_per_call\": [");
  for (int r = 0; r < rounds; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < calls; ++i) {
      p = empty_call(p);
    }
    const auto t1 = std::chrono::steady_clock::now();
    const double ns = std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(calls);
    std::printf("%s%.4f", r ? ", " : "", ns);
  }
  std::printf("]}\n");
  return p == &anchor ? 0 : 1;  // the chain of returns must end where it started
}
