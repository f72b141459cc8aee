/**
 * Java's empty JNI call (harness/probes.py): an instance native method, as the bridge's forward is, that
 * returns its argument at once (libempty_call.so). Warm-up runs first (the JIT compiles the loop), then
 * ROUNDS runs of CALLS calls with one clock read around each; prints one JSON line, ns per call of every run.
 */
public final class EmptyJni {
  native Object call(Object x);

  public static void main(String[] args) {
    System.loadLibrary("empty_call");
    long calls = args.length > 0 ? Long.parseLong(args[0]) : 1_000_000;
    int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 20;
    EmptyJni probe = new EmptyJni();
    Object x = new Object();
    for (int w = 0; w < 5; w++) {
      for (long i = 0; i < calls; i++) {
        x = probe.call(x);
      }
    }
    StringBuilder out = new StringBuilder("{\"probe\": \"java-jni\", \"ns_per_call\": [");
    for (int r = 0; r < rounds; r++) {
      long t0 = System.nanoTime();
      for (long i = 0; i < calls; i++) {
        x = probe.call(x);
      }
      long t1 = System.nanoTime();
      out.append(r == 0 ? "" : ", ").append((t1 - t0) / (double) calls);
    }
    System.out.println(out.append("]}"));
    if (x == null) {
      throw new IllegalStateException("the chain of returns lost its object");
    }
  }
}
