import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;

/**
 * Java's empty FFM downcall (harness/probes.py, JDK 22 or later): empty_call in libempty_call.so through
 * Linker.nativeLinker().downcallHandle with Linker.Option.critical(false), the option a short call that does
 * not block takes. Warm-up runs first, then ROUNDS runs of CALLS calls; prints one JSON line, ns per call.
 */
public final class EmptyFfm {
  public static void main(String[] args) throws Throwable {
    Path library = Path.of(args[0]);
    long calls = args.length > 1 ? Long.parseLong(args[1]) : 1_000_000;
    int rounds = args.length > 2 ? Integer.parseInt(args[2]) : 20;
    Linker linker = Linker.nativeLinker();
    SymbolLookup lookup = SymbolLookup.libraryLookup(library, java.lang.foreign.Arena.global());
    MethodHandle call = linker.downcallHandle(lookup.find("empty_call").orElseThrow(),
        FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS), Linker.Option.critical(false));
    MemorySegment start = MemorySegment.ofAddress(64);
    MemorySegment p = start;
    for (int w = 0; w < 5; w++) {
      for (long i = 0; i < calls; i++) {
        p = (MemorySegment) call.invokeExact(p);
      }
    }
    StringBuilder out = new StringBuilder("{\"probe\": \"java-ffm\", \"ns_per_call\": [");
    for (int r = 0; r < rounds; r++) {
      long t0 = System.nanoTime();
      for (long i = 0; i < calls; i++) {
        p = (MemorySegment) call.invokeExact(p);
      }
      long t1 = System.nanoTime();
      out.append(r == 0 ? "" : ", ").append((t1 - t0) / (double) calls);
    }
    System.out.println(out.append("]}"));
    if (p.address() != start.address()) {
      throw new IllegalStateException("the chain of returns lost its address");
    }
  }
}
